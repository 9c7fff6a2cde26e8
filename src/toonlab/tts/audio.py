"""Audio parameters, log-mel spectrograms and vocoders: the one place that fixes how audio becomes features.

Mel spectrograms are computed in torch (`torch.stft` + a librosa mel filter bank) so training, caching and
synthesis share exactly one definition. Griffin-Lim (in torch) is the default vocoder; a neural vocoder plugs
in through the `Vocoder` protocol.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from toonlab.extras import require


@dataclass(frozen=True)
class AudioParams:
    """STFT and mel settings (defaults: 16 kHz, 12.5 ms hop, 50 ms window, 80 mels up to 8 kHz).

    Log-mels are `log(max(mel, min_level))` of the magnitude mel spectrogram; `min_level` is also the value
    padding frames take (`pad_value`).
    """

    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 200
    win_length: int = 800
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    min_level: float = 1e-5

    @property
    def pad_value(self) -> float:
        return math.log(self.min_level)

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioParams:
        return cls(**d)


@lru_cache(maxsize=8)
def mel_basis(params: AudioParams) -> torch.Tensor:
    """The (n_mels, n_fft // 2 + 1) Slaney mel filter bank."""
    librosa = require("librosa")
    fb = librosa.filters.mel(
        sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax
    )
    return torch.from_numpy(fb).float()


@lru_cache(maxsize=8)
def _inverse_mel_basis(params: AudioParams) -> torch.Tensor:
    return torch.linalg.pinv(mel_basis(params))  # (n_freq, n_mels)


def _window(params: AudioParams) -> torch.Tensor:
    return torch.hann_window(params.win_length)


def stft_magnitude(wav: torch.Tensor, params: AudioParams) -> torch.Tensor:
    """(..., samples) -> (..., frames, n_fft // 2 + 1) magnitude spectrogram."""
    if wav.shape[-1] <= params.n_fft // 2:  # reflect padding needs more than half a window
        wav = torch.nn.functional.pad(wav, (0, params.n_fft // 2 + 1 - wav.shape[-1]))
    spec = torch.stft(
        wav,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        win_length=params.win_length,
        window=_window(params).to(wav.device),
        center=True,
        return_complex=True,
    )
    return spec.abs().transpose(-1, -2)


def mel_spectrogram(wav: torch.Tensor, params: AudioParams) -> torch.Tensor:
    """(..., samples) float waveform in [-1, 1] -> (..., frames, n_mels) log-mel spectrogram."""
    mag = stft_magnitude(wav.float(), params)  # (..., frames, n_freq)
    mel = mag @ mel_basis(params).to(mag.device).T  # (..., frames, n_mels)
    return torch.log(torch.clamp(mel, min=params.min_level))


def mel_to_linear(log_mel: torch.Tensor, params: AudioParams) -> torch.Tensor:
    """(frames, n_mels) log-mel -> (frames, n_freq) non-negative magnitude (pseudo-inverse of the filter bank)."""
    mel = torch.exp(log_mel)
    return torch.clamp(mel @ _inverse_mel_basis(params).to(mel.device).T, min=0.0)


def griffin_lim(
    magnitude: torch.Tensor, params: AudioParams, n_iter: int = 32, momentum: float = 0.99, seed: int = 0
) -> torch.Tensor:
    """(frames, n_freq) magnitude -> (samples,) waveform by fast Griffin-Lim (Perraudin et al. 2013)."""
    frames = magnitude.shape[0]
    min_frames = params.n_fft // params.hop_length + 2  # reflect padding needs more than half a window
    if frames < min_frames:
        magnitude = torch.cat([magnitude, magnitude.new_zeros(min_frames - frames, magnitude.shape[1])])
    spec = magnitude.T.to(torch.complex64)  # (n_freq, frames)
    gen = torch.Generator().manual_seed(seed)
    angles = torch.exp(2j * math.pi * torch.rand(spec.shape, generator=gen)).to(spec.device)
    window = _window(params).to(spec.device)
    kwargs = dict(n_fft=params.n_fft, hop_length=params.hop_length, win_length=params.win_length, window=window)
    length = (magnitude.shape[0] - 1) * params.hop_length
    previous = torch.zeros_like(spec)
    for _ in range(n_iter):
        wav = torch.istft(spec * angles, length=length, **kwargs)
        rebuilt = torch.stft(wav, center=True, return_complex=True, **kwargs)
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous
        angles = accelerated / accelerated.abs().clamp(min=1e-8)
        previous = rebuilt
    return torch.istft(spec * angles, length=length, **kwargs)[: (frames - 1) * params.hop_length]


class Vocoder(Protocol):
    """Turns a (frames, n_mels) log-mel spectrogram into a (samples,) waveform at `sample_rate`."""

    sample_rate: int
    name: str  # what the vocoder is, with its settings (names the cached features of its outputs)

    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor: ...


class GriffinLimVocoder:
    """Default vocoder: mel pseudo-inverse, magnitude sharpened by `power`, then fast Griffin-Lim.

    The level is kept: the sharpened magnitude is rescaled to the energy of the unsharpened one, and the waveform
    is only scaled down when it would clip (peak above `CLIP_PEAK`), so a style's gain survives vocoding."""

    def __init__(self, params: AudioParams, n_iter: int = 32, power: float = 1.5) -> None:
        self.params = params
        self.sample_rate = params.sample_rate
        self.n_iter = n_iter
        self.power = power
        self.name = f"Griffin-Lim ({n_iter} iterations, power {power})"

    @torch.no_grad()
    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        linear = mel_to_linear(log_mel.float(), self.params)  # (frames, n_freq)
        sharp = linear**self.power
        sharp = sharp * (linear.norm() / sharp.norm().clamp(min=1e-12))
        return limit_peak(griffin_lim(sharp, self.params, n_iter=self.n_iter))


CLIP_PEAK = 0.99


def limit_peak(wav: torch.Tensor, peak: float = CLIP_PEAK) -> torch.Tensor:
    """Scale a waveform down only when its peak exceeds `peak` (never up: quiet stays quiet)."""
    top = float(wav.abs().max()) if wav.numel() else 0.0
    return wav * (peak / top) if top > peak else wav


def load_wav(path: str | Path, sample_rate: int) -> torch.Tensor:
    """Read a mono waveform as float32 (samples,), resampled to `sample_rate` when the file differs.

    An unreadable file (empty, truncated, not audio) or one with non-finite samples (NaN, inf) is a ValueError
    naming it; a missing one a FileNotFoundError."""
    sf = require("soundfile")
    if not Path(path).is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as exc:  # soundfile.LibsndfileError
        raise ValueError(f"{path}: unreadable audio ({exc})") from exc
    wav = data.mean(axis=1)
    if not np.isfinite(wav).all():
        raise ValueError(f"{path}: the audio has non-finite samples (NaN or inf)")
    if sr != sample_rate:
        librosa = require("librosa")
        wav = librosa.resample(wav, orig_sr=sr, target_sr=sample_rate)
    return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))


def save_wav(path: str | Path, wav: torch.Tensor, sample_rate: int) -> Path:
    """Write a (samples,) float waveform as 16-bit PCM."""
    sf = require("soundfile")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.detach().cpu().clamp(-1, 1).numpy(), sample_rate, subtype="PCM_16")
    return path
