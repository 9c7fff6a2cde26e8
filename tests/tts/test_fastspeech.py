"""The duration-based backbone: aligner, length regulation, predictors, training end to end on the tone corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from toonlab.tts.aligner import durations_to_alignment, forward_sum_loss, hard_durations, log_prior
from toonlab.tts.configs import get_config
from toonlab.tts.fastspeech import regulate_length, symbol_means
from toonlab.tts.model import Batch, MultiRefFastSpeech, build_model

CLASSES = {"speaker": ["a", "b", "c"], "style": ["x", "y"]}


def test_monotonic_alignment_search_recovers_known_durations():
    durations = torch.tensor([[3, 1, 4, 2, 5]])
    frames = int(durations.sum())
    hard = durations_to_alignment(durations, frames)  # (1, T, L) one-hot
    assert hard.shape == (1, frames, 5) and torch.equal(hard.sum(-1), torch.ones(1, frames))
    log_p = torch.log(hard * 0.9 + 0.02)  # a noisy version of the true path
    found = hard_durations(log_p, torch.tensor([frames]), torch.tensor([5]))
    assert found.tolist() == durations.tolist()


def test_hard_durations_cover_every_frame_and_symbol():
    g = torch.Generator().manual_seed(0)
    log_p = torch.log_softmax(torch.randn(3, 40, 9, generator=g), -1)
    mel_lengths, text_lengths = torch.tensor([40, 25, 6]), torch.tensor([9, 7, 8])  # the last: fewer frames
    d = hard_durations(log_p, mel_lengths, text_lengths)
    assert d.sum(1).tolist() == mel_lengths.tolist()
    assert (d[0] >= 1).all() and (d[1, :7] >= 1).all() and (d[1, 7:] == 0).all()
    prior = log_prior(mel_lengths, text_lengths)
    assert prior.shape == (3, 40, 9) and torch.isfinite(prior).all()
    # the prior peaks on the diagonal: first frame on the first symbol, last frame on the last
    assert prior[0, 0].argmax() == 0 and prior[0, 39].argmax() == 8
    loss = forward_sum_loss(log_p, mel_lengths, text_lengths)
    assert torch.isfinite(loss) and loss > 0


def test_length_regulation_and_symbol_means():
    hidden = torch.arange(6.0).view(1, 3, 2)  # (B, L, d)
    durations = torch.tensor([[2, 0, 3]])
    out = regulate_length(hidden, durations, 6)
    assert out[0, :, 0].tolist() == [0, 0, 4, 4, 4, 0]  # symbol 1 skipped, zero past the end
    values = torch.tensor([[1.0, 3.0, 5.0, 7.0, 9.0, 0.0]])
    weights = torch.tensor([[1.0, 1.0, 1.0, 0.0, 1.0, 1.0]])
    means = symbol_means(values, weights, durations_to_alignment(durations, 6))
    assert means.tolist() == [[2.0, 0.0, 7.0]]  # frame 3 unvoiced: left out of symbol 2's mean


def _batch(cfg, b: int = 3, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    n_mels = cfg.audio.n_mels
    text_lengths = torch.tensor([7, 5, 6][:b])
    text = torch.randint(1, 20, (b, 7), generator=g) * (torch.arange(7)[None] < text_lengths[:, None])
    mel_lengths = torch.tensor([30, 22, 26][:b])
    mels = torch.randn(b, 30, n_mels, generator=g)
    f0 = torch.where(torch.rand(b, 30, generator=g) > 0.3, 120 + 40 * torch.rand(b, 30, generator=g), 0.0)
    refs = [(torch.randn(b, 20, n_mels, generator=g), torch.tensor([20, 16, 18][:b])) for _ in range(2)]
    labels = [{"speaker": torch.tensor([0, 1, 2][:b]), "style": torch.tensor([0, 1, 0][:b])} for _ in range(2)]
    return Batch(text, text_lengths, mels, mel_lengths, refs, labels, [f"u{i}" for i in range(b)], f0)


def test_fastspeech_trains_and_infers_within_bounds():
    cfg = get_config("micro-fs")
    torch.manual_seed(0)
    model = build_model(cfg, 20, CLASSES)
    assert isinstance(model, MultiRefFastSpeech)
    batch = _batch(cfg)
    out, _, losses = model(batch, step=5)  # past binarization_start
    assert out.mels.shape == (3, 30, cfg.audio.n_mels)
    assert out.durations.sum(1).tolist() == [30, 22, 26]
    assert {"mel", "duration", "pitch", "energy", "align", "binarization", "cls_speaker", "orth"} <= set(losses)
    losses["total"].backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    for part in ("fastspeech.aligner", "fastspeech.duration", "fastspeech.pitch", "fastspeech.energy",
                 "fastspeech.decoder", "style.subs.0", "style.subs.1"):  # fmt: skip
        assert any(n.startswith(part) for n in grads), part
    model.eval()
    style, _ = model.style(batch.references)
    free = model.infer(batch.text[:1, :7], batch.text_lengths[:1], style[:1])
    assert free.mels.shape[1] == int(free.durations.sum()) <= cfg.fastspeech.max_frames
    assert (free.durations[0] >= 1).all()
    # a huge predicted duration is cut to the bound, still >= 1 frame per symbol
    with torch.no_grad():
        model.fastspeech.duration.out.bias.fill_(9.0)
    long = model.infer(batch.text[:1, :7], batch.text_lengths[:1], style[:1])
    assert long.mels.shape[1] <= cfg.fastspeech.max_frames and (long.durations[0] >= 1).all()


def test_style_vector_changes_durations_and_pitch():
    """The predictors see the style embedding: two styles give different predicted prosody."""
    cfg = get_config("micro-fs")
    torch.manual_seed(0)
    model = build_model(cfg, 20, CLASSES).eval()
    batch = _batch(cfg)
    a = model.infer(batch.text[:1], batch.text_lengths[:1], torch.zeros(1, model.style.embed_dim))
    b = model.infer(batch.text[:1], batch.text_lengths[:1], torch.ones(1, model.style.embed_dim))
    assert not torch.allclose(a.predicted["pitch"], b.predicted["pitch"])
    assert not torch.allclose(a.predicted["duration"], b.predicted["duration"])


def test_train_micro_fs_end_to_end_resume_and_say(tone_corpus, tmp_path):
    from toonlab.tts.synthesize import Synthesizer
    from toonlab.tts.train import PrintMonitor, train

    cfg = get_config("micro-fs").with_overrides(train={"text_frontend": "characters", "val_every": 2})
    run = tmp_path / "fs"
    quiet = PrintMonitor(out=lambda _: None)
    summary = train(tone_corpus, cfg, run, steps=3, threads=1, monitor=quiet)
    assert summary["steps"] == 3 and np.isfinite(summary["val_mel"]) and summary["val_utterances"] >= 4
    assert list((tone_corpus / "features").glob("f0-*.pt"))
    summary = train(tone_corpus, cfg, run, steps=4, resume=True, threads=1, monitor=quiet)
    assert summary["steps"] == 4 and summary["steps_this_run"] == 1
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "val" and "val_duration" in r for r in rows)
    synth = Synthesizer.load(run)
    assert float(synth.model.style.mean_count) == 4  # the unset-attribute default was tracked in training
    result = synth.say("Rain falls.", {})
    assert result.wav.numel() > 0 and torch.isfinite(result.wav).all()


def test_unset_attribute_defaults_to_mean_training_embedding():
    cfg = get_config("micro-fs")
    model = build_model(cfg, 20, CLASSES)
    enc = model.style
    untracked = enc.embed({})  # nothing seen yet: mean tokens
    model.train()
    model(_batch(cfg), step=0)
    assert float(enc.mean_count) == 1
    tracked = enc.embed({})
    assert torch.allclose(tracked[0], enc.mean_style) and not torch.allclose(tracked, untracked)


def test_old_checkpoint_without_mean_buffers_still_loads():
    from toonlab.tts.model import load_weights

    cfg = get_config("micro")
    model = build_model(cfg, 20, CLASSES)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("style.mean_")}
    fresh = build_model(cfg, 20, CLASSES)
    load_weights(fresh, state)
    assert float(fresh.style.mean_count) == 0
    with pytest.raises(ValueError, match="does not match"):
        load_weights(fresh, {k: v for k, v in state.items() if "decoder" not in k})


def test_single_gst_baseline_configs_build_one_sub_encoder():
    for name in ("tiny-fs-gst", "tiny-fs-multi", "tiny-fs"):
        cfg = get_config(name)
        assert cfg.backbone == "fastspeech"
    gst = get_config("tiny-fs-gst")
    assert gst.style.attributes == ("style",) and gst.train.sampler == "self" and gst.loss.cls_weight == 0
    assert get_config("tiny-fs-multi").train.sampler == "self" and get_config("tiny-fs").train.sampler == "intercross"
    cfg = get_config("micro-fs").with_overrides(style={"attributes": ("style",)}, loss={"cls_weight": 0.0})
    model = build_model(cfg, 20, CLASSES)
    batch = _batch(cfg)
    batch.references, batch.reference_labels = batch.references[:1], batch.reference_labels[:1]
    _, outs, losses = model(batch, step=0)
    assert len(outs) == 1 and "cls_style" not in losses and torch.isfinite(losses["total"])
