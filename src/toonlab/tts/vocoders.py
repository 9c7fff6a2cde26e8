"""Vocoders beside Griffin-Lim (`toonlab.tts.audio.GriffinLimVocoder`, the zero-dependency default).

- `WorldVocoder` (needs `pyworld`, the WORLD vocoder): a log-mel -> Griffin-Lim waveform -> WORLD analysis of it
  (F0 by DIO + StoneMask, aperiodicity by D4C) -> WORLD synthesis with the spectral envelope taken from the mel itself
  (its pseudo-inverse power spectrum, smoothed). WORLD's source-filter synthesis replaces Griffin-Lim's phase
  estimate, which is where its "phasiness" comes from; the mel's own envelope keeps the level and timbre.
- `world_copy_synthesis`: WORLD analysis and synthesis of a recording itself: the ceiling of a model that would
  predict WORLD features (F0, envelope, aperiodicity) instead of a mel.
- `MelToLinear` + `LearnedVocoder`: a small convolutional network trained on the corpus to map a log-mel to the
  log linear magnitude (a learned replacement for the filter bank's pseudo-inverse), followed by Griffin-Lim.
  `train_mel_to_linear` fits it on (mel, magnitude) pairs of real recordings for a bounded time; the file it
  writes (`torch.save` of tensors and a config dict, loaded with `weights_only=True`) plugs in with
  `--vocoder PATH`.

Every vocoder keeps the level (no peak normalisation; scaled down only when it would clip).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from toonlab.extras import require
from toonlab.tts.audio import (
    AudioParams,
    GriffinLimVocoder,
    Vocoder,
    griffin_lim,
    limit_peak,
    mel_basis,
    mel_to_linear,
    stft_magnitude,
)

WORLD_F0_FLOOR, WORLD_F0_CEIL = 60.0, 600.0


class WorldVocoder:
    """Log-mel -> WORLD synthesis: F0 and aperiodicity analysed from a Griffin-Lim rendering, spectral envelope
    from the mel (see the module docstring)."""

    def __init__(self, params: AudioParams, n_iter: int = 32) -> None:
        self.params, self.sample_rate, self.n_iter = params, params.sample_rate, n_iter
        self.griffin_lim = GriffinLimVocoder(params, n_iter=n_iter)
        self._world = require("pyworld")
        self.name = f"WORLD from the mel (F0 from {self.griffin_lim.name})"

    @torch.no_grad()
    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        pw, p = self._world, self.params
        rough = self.griffin_lim(log_mel).double().numpy()
        period = 1000.0 * p.hop_length / p.sample_rate  # ms
        f0, times = pw.dio(rough, p.sample_rate, f0_floor=WORLD_F0_FLOOR, f0_ceil=WORLD_F0_CEIL, frame_period=period)
        f0 = pw.stonemask(rough, f0, times, p.sample_rate)
        n_fft = pw.get_cheaptrick_fft_size(p.sample_rate, WORLD_F0_FLOOR)
        ap = pw.d4c(rough, f0, times, p.sample_rate, fft_size=n_fft)
        sp = self._envelope(log_mel, len(f0), n_fft)
        wav = pw.synthesize(f0, sp, ap, p.sample_rate, frame_period=period)
        return limit_peak(torch.from_numpy(wav[: log_mel.shape[0] * p.hop_length].astype(np.float32)))

    def _envelope(self, log_mel: torch.Tensor, frames: int, n_fft: int) -> np.ndarray:
        """(T, n_mels) log-mel -> (frames, n_fft // 2 + 1) WORLD power envelope on WORLD's frequency grid."""
        from scipy.ndimage import uniform_filter1d

        p = self.params
        mag = mel_to_linear(log_mel.float(), p).double().numpy()  # (T, n_freq)
        power = uniform_filter1d(mag**2, size=5, axis=1) + 1e-12  # smooth over harmonics: an envelope
        src = np.linspace(0, p.sample_rate / 2, power.shape[1])
        dst = np.linspace(0, p.sample_rate / 2, n_fft // 2 + 1)
        env = np.stack([np.interp(dst, src, row) for row in power])
        env = env / np.sum(np.hanning(p.win_length) ** 2)  # STFT power -> WORLD's scale (within ~5% on speech)
        idx = np.minimum(np.arange(frames), len(env) - 1)
        return np.ascontiguousarray(env[idx])


def world_copy_synthesis(wav: np.ndarray, sample_rate: int, hop_length: int) -> np.ndarray:
    """WORLD analysis (Harvest, CheapTrick, D4C) and synthesis of a waveform itself."""
    pw = require("pyworld")
    x = np.asarray(wav, np.float64)
    period = 1000.0 * hop_length / sample_rate
    f0, t = pw.harvest(x, sample_rate, f0_floor=WORLD_F0_FLOOR, f0_ceil=WORLD_F0_CEIL, frame_period=period)
    sp = pw.cheaptrick(x, f0, t, sample_rate)
    ap = pw.d4c(x, f0, t, sample_rate)
    return pw.synthesize(f0, sp, ap, sample_rate, frame_period=period)[: len(x)].astype(np.float32)


# ---------------------------------------------------------------- learned mel -> linear


class MelToLinear(nn.Module):
    """(B, T, n_mels) log-mel -> (B, T, n_freq) log magnitude: the pseudo-inverse plus a learned residual."""

    def __init__(self, params: AudioParams, channels: int = 256, layers: int = 3, kernel: int = 5) -> None:
        super().__init__()
        self.params = params
        n_freq = params.n_fft // 2 + 1
        blocks: list[nn.Module] = []
        c_in = params.n_mels
        for _ in range(layers):
            blocks += [nn.Conv1d(c_in, channels, kernel, padding=kernel // 2), nn.GELU()]
            c_in = channels
        self.body = nn.Sequential(*blocks)
        self.out = nn.Conv1d(channels, n_freq, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        base = torch.log(mel_to_linear(log_mel, self.params).clamp(min=self.params.min_level))  # (B, T, F)
        return base + self.out(self.body(log_mel.transpose(1, 2))).transpose(1, 2)

    def config(self) -> dict[str, int]:
        conv = self.body[0]
        return {"channels": conv.out_channels, "layers": len(self.body) // 2, "kernel": conv.kernel_size[0]}


class LearnedVocoder:
    """`MelToLinear` magnitude, then fast Griffin-Lim (level kept, scaled down only to avoid clipping)."""

    def __init__(self, net: MelToLinear, n_iter: int = 32, label: str = "") -> None:
        self.net = net.eval()
        self.params, self.sample_rate, self.n_iter = net.params, net.params.sample_rate, n_iter
        self.name = f"learned mel-to-linear {label} + Griffin-Lim ({n_iter} iterations)"

    @torch.no_grad()
    def __call__(self, log_mel: torch.Tensor) -> torch.Tensor:
        magnitude = torch.exp(self.net(log_mel.float()[None])[0])  # (T, n_freq)
        return limit_peak(griffin_lim(magnitude, self.params, n_iter=self.n_iter))


def save_mel_to_linear(net: MelToLinear, path: Path, info: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    payload = {"kind": "mel-to-linear", "audio": net.params.to_dict(), "config": net.config(), "info": info or {}}
    torch.save({**payload, "state": net.state_dict()}, tmp)
    tmp.replace(path)
    return path


def load_mel_to_linear(path: str | Path) -> MelToLinear:
    """A file written by `save_mel_to_linear` (a ValueError when it is not one)."""
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a vocoder file"
        raise ValueError(f"{path}: not a mel-to-linear vocoder file ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("kind") != "mel-to-linear":
        raise ValueError(f"{path}: not a mel-to-linear vocoder file")
    net = MelToLinear(AudioParams.from_dict(blob["audio"]), **blob["config"])
    net.load_state_dict(blob["state"])
    return net


def train_mel_to_linear(
    wavs: Sequence[torch.Tensor],
    params: AudioParams,
    minutes: float = 5.0,
    max_steps: int = 3000,
    batch: int = 8,
    crop: int = 96,
    seed: int = 0,
) -> tuple[MelToLinear, dict[str, float]]:
    """Fit `MelToLinear` on real waveforms (L1 on log magnitude over random crops of `crop` frames) for at most
    `minutes` or `max_steps`; returns the net and {steps, seconds, loss}."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pairs = []
    for w in wavs:
        mag = stft_magnitude(w.float(), params)  # (T, n_freq)
        mel = torch.log((mag @ mel_basis(params).T).clamp(min=params.min_level))
        pairs.append((mel, torch.log(mag.clamp(min=params.min_level))))
    net = MelToLinear(params)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    t0, step, loss = time.time(), 0, float("nan")
    while step < max_steps and time.time() - t0 < minutes * 60:
        xs, ys = [], []
        for i in rng.integers(0, len(pairs), batch):
            mel, lin = pairs[i]
            start = int(rng.integers(0, max(1, mel.shape[0] - crop)))
            x, y = mel[start : start + crop], lin[start : start + crop]
            pad = crop - x.shape[0]
            xs.append(torch.nn.functional.pad(x, (0, 0, 0, pad), value=params.pad_value))
            ys.append(torch.nn.functional.pad(y, (0, 0, 0, pad), value=params.pad_value))
        pred = net(torch.stack(xs))  # (B, crop, n_freq)
        err = (pred - torch.stack(ys)).abs().mean()
        opt.zero_grad()
        err.backward()
        opt.step()
        step, loss = step + 1, float(err.detach())
    return net.eval(), {"steps": step, "seconds": time.time() - t0, "loss": loss}


def train_vocoder_file(corpus_dir: Path, out: Path, minutes: float, clips: int = 256, seed: int = 0) -> dict:
    """`toonlab tts train-vocoder`: fit `MelToLinear` on up to `clips` training-split recordings of a corpus (spread
    over its attribute combinations) for `minutes`, write it to `out`; returns the training figures."""
    from toonlab.tts.audio import AudioParams, load_wav
    from toonlab.tts.judging import balanced_sample
    from toonlab.tts.manifest import Corpus

    params = AudioParams()
    corpus = Corpus.load(corpus_dir)
    utts = balanced_sample(corpus.split("train"), corpus.attributes, 10**6, seed)
    utts = utts[:: max(1, len(utts) // clips)][:clips]
    if not utts:
        raise ValueError(f"{corpus.root}: no training utterances to fit a vocoder on")
    net, info = train_mel_to_linear([load_wav(u.audio, params.sample_rate) for u in utts], params, minutes=minutes)
    info.update(clips=len(utts), corpus=str(corpus.root))
    save_mel_to_linear(net, out, info)
    return info


def make_vocoder(spec: str, params: AudioParams, n_iter: int = 32) -> Vocoder:
    """`griffin-lim` (default), `world`, or the path of a trained mel-to-linear file -> a vocoder."""
    if spec in ("", "griffin-lim", "gl"):
        return GriffinLimVocoder(params, n_iter=n_iter)
    if spec == "world":
        return WorldVocoder(params, n_iter=n_iter)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"--vocoder expects griffin-lim, world or a mel-to-linear file; {spec!r} is none of them")
    net = load_mel_to_linear(path)
    if net.params != params:
        raise ValueError(f"{path}: trained for audio settings {net.params}, the model uses {params}")
    digest = hashlib.sha1(path.read_bytes()).hexdigest()[:10]
    return LearnedVocoder(net, n_iter=n_iter, label=f"{path.name} {digest}")
