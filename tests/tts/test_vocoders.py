"""Vocoders beside Griffin-Lim: WORLD from the mel, the learned mel-to-linear network (training, file round trip,
plugging into `tts say`), and clear errors for a bad `--vocoder`."""

from __future__ import annotations

import math
import shutil
import subprocess

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("librosa")

from toonlab.cli import app  # noqa: E402
from toonlab.tts.audio import AudioParams, GriffinLimVocoder, load_wav, mel_spectrogram  # noqa: E402
from toonlab.tts.metrics import mcd  # noqa: E402
from toonlab.tts.vocoders import (  # noqa: E402
    LearnedVocoder,
    load_mel_to_linear,
    make_vocoder,
    save_mel_to_linear,
    train_mel_to_linear,
)

P = AudioParams()


def voice(f0: float, seconds: float = 1.0, gain: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * P.sample_rate)) / P.sample_rate
    f = f0 * (1 + 0.05 * torch.sin(2 * math.pi * 3 * t))
    phase = 2 * math.pi * torch.cumsum(f, 0) / P.sample_rate
    return gain * sum(torch.sin(k * phase) / k for k in range(1, 8)) / 2


def rms_db(w: torch.Tensor) -> float:
    return float(20 * torch.log10(w.pow(2).mean().sqrt()))


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng renders the test speech")
def test_world_from_the_mel_keeps_level_and_beats_griffin_lim_on_speech(tmp_path):
    pytest.importorskip("pyworld")
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "A small boat drifts by the shore."], check=True)
    speech = 0.5 * load_wav(path, P.sample_rate)
    mel = mel_spectrogram(speech, P)
    world, gl = make_vocoder("world", P, 16), GriffinLimVocoder(P, n_iter=16)
    out_w, out_g = world(mel), gl(mel)
    assert out_w.shape[0] <= mel.shape[0] * P.hop_length and torch.isfinite(out_w).all()
    assert abs(rms_db(out_w) - rms_db(speech)) < 4.0  # level kept (no normalisation)
    d_world = mcd(mel.numpy(), mel_spectrogram(out_w, P).numpy())[0]
    d_gl = mcd(mel.numpy(), mel_spectrogram(out_g, P).numpy())[0]
    assert d_world < d_gl, (d_world, d_gl)


def test_learned_mel_to_linear_trains_saves_and_loads(tmp_path):
    wavs = [voice(f) for f in (110.0, 180.0, 260.0)]
    net, info = train_mel_to_linear(wavs, P, minutes=1.0, max_steps=30, batch=2, crop=32)
    assert info["steps"] == 30 and info["loss"] == info["loss"]
    path = save_mel_to_linear(net, tmp_path / "m2l.pt", info)
    again = load_mel_to_linear(path)
    mel = mel_spectrogram(wavs[0], P)[None]
    assert torch.allclose(net(mel), again(mel))
    out = make_vocoder(str(path), P, 8)
    assert isinstance(out, LearnedVocoder) and out(mel[0]).shape[0] > 0
    assert "m2l.pt" in out.name


def test_learned_net_starts_as_the_pseudo_inverse():
    from toonlab.tts.audio import mel_to_linear
    from toonlab.tts.vocoders import MelToLinear

    mel = mel_spectrogram(voice(200.0), P)
    base = torch.log(mel_to_linear(mel, P).clamp(min=P.min_level))
    assert torch.allclose(MelToLinear(P)(mel[None])[0], base)


@pytest.mark.parametrize("spec", ["wavenet", "/no/such/file.pt"])
def test_unknown_vocoder_is_a_clear_error(spec):
    with pytest.raises(ValueError, match="--vocoder"):
        make_vocoder(spec, P)


def test_not_a_vocoder_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a mel-to-linear vocoder file"):
        make_vocoder(str(bad), P)


def test_say_with_world(micro_run, tmp_path):
    pytest.importorskip("pyworld")
    out = tmp_path / "w.wav"
    result = CliRunner().invoke(
        app, ["tts", "say", str(micro_run), "Rain falls.", "-o", str(out), "--vocoder", "world"]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 44
    bad = CliRunner().invoke(app, ["tts", "say", str(micro_run), "Rain.", "-o", str(out), "--vocoder", "nope"])
    assert bad.exit_code == 2 and "--vocoder" in bad.output


def test_train_vocoder_cli(tone_corpus, tmp_path):
    out = tmp_path / "voc.pt"
    args = ["tts", "train-vocoder", "--corpus", str(tone_corpus), "--out", str(out), "--minutes", "0.05"]
    result = CliRunner().invoke(app, [*args, "--clips", "4"])
    assert result.exit_code == 0, result.output
    assert "4 clips" in result.output and isinstance(make_vocoder(str(out), P, 4), LearnedVocoder)
    missing = CliRunner().invoke(app, ["tts", "train-vocoder", "--corpus", str(tmp_path / "none"), "--out", str(out)])
    assert missing.exit_code == 2 and "error" in missing.output
