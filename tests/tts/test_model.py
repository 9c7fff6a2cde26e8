"""Tacotron + multi-reference encoder: shapes, gradients, one-batch overfit, guided attention, baseline config."""

from __future__ import annotations

import torch

from toonlab.tts.configs import get_config
from toonlab.tts.model import Batch, build_model
from toonlab.tts.tacotron import attention_scores, guided_attention_mask, lengths_to_mask

CLASSES = {"speaker": ["a", "b", "c"], "style": ["x", "y"]}
N_SYMBOLS = 20


def make_batch(config, b: int = 3, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    r, n_mels = config.tacotron.reduction, config.audio.n_mels
    text_lengths = torch.tensor([7, 5, 6, 4][:b])
    text = torch.randint(2, N_SYMBOLS, (b, 7), generator=g) * lengths_to_mask(text_lengths, 7)
    mel_lengths = torch.tensor([12, 9, 11, 8][:b])
    mels = torch.randn(b, 12, n_mels, generator=g).cumsum(1) / 4  # smooth-ish, padded to a multiple of r
    assert mels.shape[1] % r == 0
    refs = [(torch.randn(b, 16, n_mels, generator=g), torch.tensor([16, 10, 13, 9][:b])) for _ in CLASSES]
    labels = [{"speaker": torch.tensor([0, 1, 2, 0][:b]), "style": torch.tensor([0, 1, 1, 0][:b])} for _ in CLASSES]
    return Batch(text, text_lengths, mels, mel_lengths, refs, labels, [f"u{i}" for i in range(b)])


def test_shapes() -> None:
    cfg = get_config("micro")
    model = build_model(cfg, N_SYMBOLS, CLASSES)
    batch = make_batch(cfg)
    out, subs, losses = model(batch)
    b, t, n_mels, r = 3, 12, cfg.audio.n_mels, cfg.tacotron.reduction
    assert out.mels.shape == out.mels_post.shape == (b, t, n_mels)
    assert out.stop_logits.shape == (b, t // r)
    assert out.alignments.shape == (b, t // r, 7)
    assert torch.allclose(out.alignments.sum(-1), torch.ones(b, t // r), atol=1e-5)
    assert out.alignments[1, :, 5:].abs().max() < 1e-6  # padding never attended
    assert [s.style.shape for s in subs] == [(b, cfg.style.embed_dim)] * 2
    assert [s.weights.shape for s in subs] == [(b, cfg.style.n_heads, cfg.style.n_tokens)] * 2
    assert {"mel", "mel_post", "stop", "guided_attention", "cls_speaker", "cls_style", "orth", "total"} <= set(losses)
    model.eval()
    free = model.tacotron.infer(batch.text[:1], batch.text_lengths[:1], torch.zeros(1, model.style.embed_dim))
    assert free.mels_post.shape[0] == 1 and free.mels_post.shape[1] % r == 0
    assert free.alignments.shape[1] == free.mels.shape[1] // r


def test_every_parameter_gets_a_gradient() -> None:
    cfg = get_config("micro").with_overrides(loss={"adversarial_weight": 0.5, "style_warmup_steps": 0})
    model = build_model(cfg, N_SYMBOLS, CLASSES)
    assert len(model.style_loss.adversaries) == 2
    _, _, losses = model(make_batch(cfg))
    losses["total"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # the padding row of the text embedding is the only parameter allowed to stay at zero gradient
    assert missing == [] or missing == ["tacotron.encoder.embedding.weight"], missing


def test_one_batch_overfit() -> None:
    torch.manual_seed(0)
    cfg = get_config("micro").with_overrides(tacotron={"dropout": 0.0, "prenet_dropout": 0.0})
    model = build_model(cfg, N_SYMBOLS, CLASSES)
    batch = make_batch(cfg, b=4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = last = None
    for step in range(120):
        _, _, losses = model(batch, step)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in losses.items()}
        last = {k: float(v.detach()) for k, v in losses.items()}
    assert last["mel_post"] < 0.35 * first["mel_post"], (first, last)
    assert last["cls_speaker"] < 0.5 * first["cls_speaker"]


def test_guided_attention_mask() -> None:
    w = guided_attention_mask(torch.tensor([4, 2]), torch.tensor([4, 3]), 4, 4, sigma=0.4)
    assert w.shape == (2, 4, 4)
    assert torch.allclose(torch.diagonal(w[0]), torch.zeros(4))  # zero on the diagonal
    assert w[0, 0, 3] > w[0, 0, 1] > 0  # grows away from it
    assert w[1, 3:].abs().sum() == 0 and w[1, :, 2:].abs().sum() == 0  # zero outside the utterance


def test_attention_scores() -> None:
    diagonal = torch.eye(6)
    s = attention_scores(diagonal, 6)
    assert s["focus"] == 1.0 and s["diagonality"] == 1.0 and s["monotonic"] == 1.0
    stuck = torch.zeros(6, 30)
    stuck[:, 0] = 1.0  # attention that never moves
    assert attention_scores(stuck, 30)["diagonality"] < 0.5
    uniform = torch.full((6, 30), 1 / 30)
    assert attention_scores(uniform, 30)["focus"] < 0.1


def test_single_gst_baseline_is_another_config() -> None:
    cfg = get_config("tiny-gst")
    model = build_model(cfg, N_SYMBOLS, CLASSES)
    assert model.style.attributes == ["style"]
    assert len(model.style_loss.classifiers) == 0 and cfg.train.sampler == "self"
    micro = get_config("micro").with_overrides(
        style={"attributes": ("style",)}, loss={"cls_weight": 0.0, "orth_weight": 0.0}
    )
    small = build_model(micro, N_SYMBOLS, CLASSES)
    batch = make_batch(micro)
    batch.references, batch.reference_labels = batch.references[:1], batch.reference_labels[:1]
    _, _, losses = small(batch)
    assert "orth" not in losses and "cls_style" not in losses


def test_config_round_trip() -> None:
    from toonlab.tts.configs import Config

    for name in ("micro", "tiny", "tiny-gst", "base", "base-gst", "tiny-fs", "base-fs"):
        cfg = get_config(name)
        assert Config.from_dict(cfg.to_dict()) == cfg
