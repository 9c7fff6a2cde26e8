"""Training on hostile input: unusable audio is skipped and counted, a non-finite loss stops training without
saving NaN weights, a missing wav is a clean error; the batch sampler and device choice behave."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter

import numpy as np
import pytest
import torch

from toonlab.tts.batching import BucketBatchSampler
from toonlab.tts.configs import get_config
from toonlab.tts.device import resolve_device
from toonlab.tts.train import NonFiniteLoss, PrintMonitor, train

QUIET = PrintMonitor(out=lambda _: None)


def _config():
    return get_config("micro").with_overrides(train={"text_frontend": "characters", "val_every": 2})


@pytest.fixture()
def hostile_corpus(tone_corpus, tmp_path):
    """The tone corpus with one NaN wav, one empty file and one text file posing as a wav (training split)."""
    import soundfile as sf

    root = tmp_path / "corpus"
    shutil.copytree(tone_corpus, root, ignore=shutil.ignore_patterns("features"))
    sf.write(root / "wavs" / "low-calm-s0.wav", np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    (root / "wavs" / "mid-calm-s0.wav").write_bytes(b"")
    (root / "wavs" / "high-calm-s0.wav").write_text("not audio at all\n")
    return root


def test_unusable_audio_is_skipped_counted_and_named(hostile_corpus, tmp_path):
    messages: list[str] = []
    summary = train(
        hostile_corpus, _config(), tmp_path / "run", steps=2, threads=1, monitor=PrintMonitor(out=messages.append)
    )
    assert summary["skipped_unusable"] == 3
    assert set(summary["skipped_ids"]) == {"low-calm-s0", "mid-calm-s0", "high-calm-s0"}
    note = next(m for m in messages if m.startswith("skipped 3"))
    assert "non-finite" in note and "low-calm-s0" in note
    assert math.isfinite(summary["val_mel"])
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_missing_wav_is_a_clean_cli_error(tone_corpus, tmp_path):
    from typer.testing import CliRunner

    from toonlab.cli import app

    root = tmp_path / "corpus"
    shutil.copytree(tone_corpus, root, ignore=shutil.ignore_patterns("features"))
    (root / "wavs" / "low-calm-s1.wav").unlink()
    result = CliRunner().invoke(app, ["tts", "train", "--corpus", str(root), "--config", "micro", "--out",
                                      str(tmp_path / "run"), "--steps", "1"])  # fmt: skip
    assert result.exit_code == 2 and "low-calm-s1" in result.output and "does not exist" in result.output


def test_non_finite_loss_stops_without_saving_nan_weights(tone_corpus, tmp_path, monkeypatch):
    from toonlab.tts.model import MultiRefTacotron

    run = tmp_path / "run"
    train(tone_corpus, _config(), run, steps=2, threads=1, monitor=QUIET)  # a finite checkpoint at step 2
    before = torch.load(run / "checkpoint.pt", weights_only=True)
    original = MultiRefTacotron._backbone_losses

    def poisoned(self, batch, style, step):
        out, losses = original(self, batch, style, step)
        losses["mel"] = losses["mel"] * float("nan")
        losses["total"] = losses["total"] + losses["mel"]
        return out, losses

    monkeypatch.setattr(MultiRefTacotron, "_backbone_losses", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"step 3: non-finite.*in batch \[.*-s\d.*'mel'"):
        train(tone_corpus, _config(), run, steps=6, resume=True, threads=1, monitor=QUIET)
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    assert after["step"] == 2
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_length_limit_drops_whole_sentences_so_no_style_loses_more(tone_corpus, tmp_path):
    # The tone corpus's "calm" clips are ~1.3x longer than "lively" ones; a limit between the two drops the
    # sentence for both styles, never only the slow style's clips.
    cfg = _config().with_overrides(train={"max_seconds": 0.87})  # calm 0.84-0.90 s, lively 0.65-0.69 s
    summary = train(tone_corpus, cfg, tmp_path / "run", steps=1, threads=1, monitor=QUIET)
    by_style = summary["length_dropped_by_value"]["style"]
    assert summary["length_dropped_sentences"] >= 1
    assert by_style.get("calm", 0) == by_style.get("lively", 0) > 0


def test_bucket_sampler_splits_one_epoch_across_ranks_and_resumes():
    lengths = [int(x) for x in np.random.default_rng(0).integers(20, 400, size=103)]
    ranks = [BucketBatchSampler(lengths, 8, rank=r, world=2, seed=3) for r in range(2)]
    for s in ranks:
        s.set_epoch(5)
    batches = [list(s) for s in ranks]
    assert len(batches[0]) == len(batches[1]) == ranks[0].batches_per_epoch() == len(ranks[0])
    seen = Counter(i for rank in batches for b in rank for i in b)
    assert max(seen.values()) == 1  # disjoint across ranks
    for b in batches[0]:
        spread = [lengths[i] for i in b]
        assert max(spread) <= 1.25 * min(spread) + 40  # bucketed by length
    ranks[0].set_epoch(5, start=3)
    assert list(ranks[0]) == batches[0][3:]  # resuming mid-epoch continues the same batches
    ranks[0].set_epoch(6)
    assert list(ranks[0]) != batches[0]  # a new epoch, a new order
    with pytest.raises(ValueError):
        BucketBatchSampler(lengths, 8, rank=2, world=2)


def test_cuda_asked_for_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available.*--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="unsupported device|unknown device"):
        resolve_device("tpu")


def test_train_cli_device_cuda_without_gpu_exits_2(tone_corpus, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from toonlab.cli import app

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["tts", "train", "--corpus", str(tone_corpus), "--config", "micro", "--out", str(tmp_path / "r"),
            "--steps", "1", "--device", "cuda"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "CUDA is not available" in result.output
    assert not (tmp_path / "r" / "checkpoint.pt").exists()


def test_minutes_budget_stops_validated_and_saved(tone_corpus, tmp_path):
    run = tmp_path / "run"
    summary = train(tone_corpus, _config(), run, steps=1000, threads=1, monitor=QUIET, max_minutes=0.0)
    assert summary["steps"] == 1 and "val_mel" in summary
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 1


def test_fastspeech_trains_under_torchrun_with_two_gloo_processes(tone_corpus, tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "toonlab.cli", "tts", "train", "--corpus", str(tone_corpus), "--config", "micro-fs", "--out",
           str(run), "--steps", "2", "--threads", "1"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world"] == 2 and summary["steps"] == 2 and math.isfinite(summary["val_mel"])


def test_sigterm_mid_training_saves_and_exits_cleanly(tone_corpus, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "toonlab.cli", "tts", "train", "--corpus", str(tone_corpus), "--config", "micro",
           "--out", str(run), "--steps", "100000", "--threads", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    metrics = run / "metrics.jsonl"
    t0 = time.time()
    while not (metrics.exists() and metrics.read_text().count('"train"') >= 3) and time.time() - t0 < 300:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert 3 <= summary["steps"] < 100000
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == summary["steps"]
