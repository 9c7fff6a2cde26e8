"""Log-mel spectrogram, Griffin-Lim vocoder and wav I/O."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("librosa")

from toonlab.tts.audio import (  # noqa: E402
    AudioParams,
    GriffinLimVocoder,
    load_wav,
    mel_basis,
    mel_spectrogram,
    save_wav,
)


def sine(freq: float, seconds: float = 1.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return 0.5 * torch.sin(2 * math.pi * freq * t)


def test_mel_shape_floor_and_peak_band() -> None:
    p = AudioParams()
    mel = mel_spectrogram(sine(1000.0), p)
    assert mel.shape == (1 + 16000 // p.hop_length, p.n_mels)
    assert torch.isfinite(mel).all()
    assert mel.min() >= p.pad_value - 1e-6
    silence = mel_spectrogram(torch.zeros(4000), p)
    assert torch.allclose(silence, torch.full_like(silence, p.pad_value))
    # the loudest band is the one whose filter peaks nearest 1 kHz
    centres = mel_basis(p).argmax(dim=1).float() * p.sample_rate / p.n_fft
    band = int(mel[10:-10].mean(0).argmax())
    assert abs(centres[band] - 1000.0) < 100.0


def test_batched_mel_matches_single() -> None:
    p = AudioParams()
    wavs = torch.stack([sine(300.0), sine(2000.0)])
    assert torch.allclose(mel_spectrogram(wavs, p)[1], mel_spectrogram(wavs[1], p), atol=1e-4)


def test_griffin_lim_reconstructs_the_mel() -> None:
    p = AudioParams()
    wav = sine(440.0) + 0.5 * sine(1200.0)
    mel = mel_spectrogram(wav, p)
    out = GriffinLimVocoder(p, n_iter=16, power=1.0)(mel)
    assert out.shape[0] == (mel.shape[0] - 1) * p.hop_length
    assert out.abs().max() <= 1.0
    a = torch.exp(mel_spectrogram(out, p))[5:-5].flatten()
    b = torch.exp(mel)[5:-5].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.95


def rms_db(wav: torch.Tensor) -> float:
    return float(20 * torch.log10(wav.pow(2).mean().sqrt()))


@pytest.mark.parametrize("power", [1.0, 1.5])
def test_griffin_lim_keeps_the_level(power) -> None:
    """No peak normalisation: a quiet and a loud clip stay 12 dB apart, each near its own level."""
    p = AudioParams()
    wav = sine(220.0) + 0.3 * sine(660.0) + 0.2 * sine(1500.0)
    levels = []
    for gain in (0.1, 0.4):
        out = GriffinLimVocoder(p, n_iter=16, power=power)(mel_spectrogram(gain * wav, p))
        levels.append((rms_db(out), rms_db(gain * wav[: out.shape[0]])))
    (quiet, quiet_in), (loud, loud_in) = levels
    assert abs((loud - quiet) - 20 * math.log10(4)) < 1.0
    assert abs(quiet - quiet_in) < 3.0 and abs(loud - loud_in) < 3.0


def test_vocoder_scales_down_only_to_avoid_clipping() -> None:
    from toonlab.tts.audio import limit_peak

    quiet = 0.2 * sine(300.0)
    assert torch.equal(limit_peak(quiet), quiet)
    loud = limit_peak(3.0 * sine(300.0))
    assert float(loud.abs().max()) == pytest.approx(0.99, abs=1e-4)


def test_wav_round_trip_and_resample(tmp_path) -> None:
    wav = sine(440.0, seconds=0.5, sr=22050)
    path = save_wav(tmp_path / "a.wav", wav, 22050)
    same = load_wav(path, 22050)
    assert torch.allclose(same, wav, atol=1e-3)
    resampled = load_wav(path, 16000)
    assert abs(resampled.shape[0] - 8000) <= 2


@pytest.mark.parametrize("content", [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"not audio at all"])
def test_unreadable_audio_is_a_clear_error(tmp_path, content) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad\.wav: unreadable audio"):
        load_wav(path, 16000)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_wav(tmp_path / "missing.wav", 16000)


def test_params_round_trip() -> None:
    p = AudioParams(n_mels=40)
    assert AudioParams.from_dict(p.to_dict()) == p
