"""CLI smoke: build a tiny espeak-ng corpus, train a few steps (also resumed, also under torchrun with 2
processes), then `toonlab tts say` with every kind of style control."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("librosa")

from toonlab.cli import app  # noqa: E402

VOICES = {"us": "en-us", "uk": "en-gb+f3"}
STYLES = {"calm": ("medium", "medium"), "high": ("x-high", "fast")}
SENTENCES = ["The cat sat down.", "Open the red door.", "We like green tea.", "Birds sing at dawn."]


def need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is required in CI (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """2 voices x 2 styles x 4 sentences (the last one held out), rendered by espeak-ng, 16 kHz."""
    need_espeak()
    from toonlab.tts.audio import load_wav, save_wav
    from toonlab.tts.manifest import write_manifest

    root = tmp_path_factory.mktemp("corpus")
    (root / "wavs").mkdir()
    rows = []
    for si, text in enumerate(SENTENCES):
        for v, voice in VOICES.items():
            for st, (pitch, rate) in STYLES.items():
                uid = f"{v}-{st}-s{si}"
                wav = root / "wavs" / f"{uid}.wav"
                ssml = f'<speak><prosody pitch="{pitch}" rate="{rate}">{text}</prosody></speak>'
                subprocess.run(["espeak-ng", "-m", "-v", voice, "-w", str(wav), ssml], check=True)
                y = load_wav(wav, 16000)
                save_wav(wav, y, 16000)
                rows.append(
                    {
                        "id": uid,
                        "text": text,
                        "audio": f"wavs/{uid}.wav",
                        "duration": len(y) / 16000,
                        "sample_rate": 16000,
                        "sentence_id": f"s{si}",
                        "split": "test" if si == len(SENTENCES) - 1 else "train",
                        "speaker": v,
                        "style": st,
                    }
                )
    write_manifest(root, rows, ["speaker", "style"])
    return root


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_resume_and_say(corpus: Path, tmp_path: Path) -> None:
    import soundfile as sf

    run = tmp_path / "run"
    train = ("tts", "train", "--corpus", corpus, "--config", "micro", "--out", run, "--threads", "1")
    invoke(*train, "--steps", "3")
    assert (run / "checkpoint.pt").exists()
    assert list((run / "alignments").glob("step_*.png"))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in rows if r["kind"] == "val"]
    assert val and {"val_mel_post", "val_tf_diagonality", "val_free_focus"} <= set(val[-1])
    assert len(list((corpus / "features").glob("mels-*.pt"))) == 1  # features cached once

    first = json.loads((run / "summary.json").read_text())
    out = invoke(*train, "--steps", "4", "--resume")
    assert "resuming" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["steps_this_run"] == 1
    assert summary["minutes_total"] >= first["minutes_total"] + summary["minutes"] - 0.02  # time adds up

    ref = corpus / "wavs" / "us-calm-s0.wav"
    other = corpus / "wavs" / "uk-high-s1.wav"
    wav = tmp_path / "a.wav"
    invoke(
        "tts", "say", run, "Hello there.", "--ref", f"speaker={ref}", "--interp", f"style={ref},{other},0.3", "-o", wav
    )
    wav2 = tmp_path / "b.wav"
    invoke("tts", "say", run, "Hello there.", "--tokens", "speaker=0:0.5,1:0.5", "--random", "style", "-o", wav2)
    for path in (wav, wav2):
        data, sr = sf.read(path)
        assert sr == 16000 and len(data) > 0 and abs(data).max() <= 1.0

    bad = CliRunner().invoke(app, ["tts", "say", str(run), "   ", "-o", str(tmp_path / "c.wav")])
    assert bad.exit_code == 2 and "nothing to say" in bad.output
    bad = CliRunner().invoke(app, ["tts", "say", str(run), "Hi.", "--random", "emotion", "-o", str(tmp_path / "c.wav")])
    assert bad.exit_code == 2 and "unknown style attribute" in bad.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_ddp_two_cpu_processes(corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
        "-m", "toonlab.cli", "tts", "train", "--corpus", str(corpus), "--config", "micro", "--out", str(run),
        "--steps", "2", "--threads", "1",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "x 2" in proc.stdout  # batch size x world size
    assert json.loads((run / "summary.json").read_text())["steps"] == 2


def test_training_threads_follow_the_cpus_the_process_may_use(corpus: Path, tmp_path: Path, monkeypatch) -> None:
    """Without --threads each rank takes the CPUs of its affinity (taskset, containers), not the machine's count."""
    import os

    import torch

    asked: list[int] = []
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(torch, "set_num_threads", asked.append)
    invoke("tts", "train", "--corpus", corpus, "--config", "micro", "--out", tmp_path / "run", "--steps", "1")
    assert asked[:1] == [3]
