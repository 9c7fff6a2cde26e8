"""Training features and their caches: log-mels, frame F0 and phoneme symbols, computed once per utterance in
`DataLoader` worker processes and remembered in the corpus's feature folder.

Cache files (atomic writes): `mels-<audio params hash>.pt`, `f0-<hash>.pt` ({"values": id -> tensor, "stamps":
id -> "size:mtime"}; an utterance whose audio file changed is recomputed) and `symbols-<front end>.json`.
Audio that cannot be used (missing, empty, not audio, non-finite samples) is not cached: it is returned as a
skip with its reason, so the caller can count it and name it.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from toonlab.tts.audio import AudioParams, load_wav, mel_spectrogram
from toonlab.tts.manifest import Utterance
from toonlab.tts.text import TextFrontEnd

MIN_SECONDS = 0.05
SAVE_EVERY = 1000  # utterances between cache writes while computing


class UnusableAudio(ValueError):
    """An utterance's audio is missing, empty, unreadable or holds non-finite samples."""


def checked_wav(path: Path, params: AudioParams) -> torch.Tensor:
    """load_wav, refusing empty clips and non-finite samples (each a clear UnusableAudio naming the file)."""
    try:
        wav = load_wav(path, params.sample_rate)
    except (ValueError, FileNotFoundError) as exc:
        raise UnusableAudio(str(exc)) from exc
    if wav.numel() < MIN_SECONDS * params.sample_rate:
        raise UnusableAudio(f"{path}: empty or shorter than {MIN_SECONDS} s ({wav.numel()} samples)")
    if not bool(torch.isfinite(wav).all()):
        bad = int((~torch.isfinite(wav)).sum())
        raise UnusableAudio(f"{path}: {bad} non-finite (NaN/inf) samples")
    return wav


def mel_feature(path: Path, params: AudioParams) -> torch.Tensor:
    """(T, n_mels) float16 log-mel."""
    return mel_spectrogram(checked_wav(path, params), params).half()


def f0_feature(path: Path, params: AudioParams) -> torch.Tensor:
    """(T,) float32 F0 in Hz at the mel frame rate (WORLD dio + stonemask), 0 where unvoiced."""
    from toonlab.extras import require

    with warnings.catch_warnings():  # pyworld imports the deprecated pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        pw = require("pyworld")
    wav = checked_wav(path, params).double().numpy()
    period = 1000.0 * params.hop_length / params.sample_rate
    f0, times = pw.dio(wav, params.sample_rate, f0_floor=60.0, f0_ceil=600.0, frame_period=period)
    f0 = pw.stonemask(wav, f0, times, params.sample_rate)
    frames = 1 + wav.shape[0] // params.hop_length  # the mel frame count (centred STFT)
    out = np.zeros(frames, dtype=np.float32)
    n = min(frames, f0.shape[0])
    out[:n] = f0[:n]
    return torch.from_numpy(out)


@dataclass
class _Job(Dataset):
    items: list[tuple[str, Path]]
    compute: Callable[[Path], torch.Tensor]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[str, torch.Tensor | None, str | None]:
        uid, path = self.items[i]
        try:
            return uid, self.compute(path), None
        except UnusableAudio as exc:
            return uid, None, str(exc)


def _identity(x: Any) -> Any:
    return x


def _stamp(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _params_key(params: AudioParams) -> str:
    return hashlib.sha1(json.dumps(params.to_dict(), sort_keys=True).encode()).hexdigest()[:10]


@dataclass
class FeatureSet:
    values: dict[str, torch.Tensor]
    skipped: dict[str, str] = field(default_factory=dict)  # id -> reason


def cached_feature(
    name: str,
    compute: Callable[[Path], torch.Tensor],
    utterances: Sequence[Utterance],
    params: AudioParams,
    cache_dir: Path,
    workers: int = 0,
    log: Callable[[str], None] = print,
) -> FeatureSet:
    """id -> feature for every usable utterance, computing what the cache lacks in `workers` processes."""
    path = cache_dir / f"{name}-{_params_key(params)}.pt"
    cache = torch.load(path, weights_only=True) if path.exists() else {"mels": {}, "stamps": {}}
    values: dict[str, torch.Tensor] = cache["mels"]  # the key predates other features; kept for old caches
    stamps = {u.id: _stamp(u.audio) for u in utterances}
    missing = [u for u in utterances if u.id not in values or cache["stamps"].get(u.id) != stamps[u.id]]
    skipped: dict[str, str] = {}
    if missing:
        log(f"computing {name} for {len(missing)} utterances ({workers} workers) -> {path}")
        job = _Job([(u.id, u.audio) for u in missing], compute)
        loader = DataLoader(job, batch_size=None, num_workers=workers, collate_fn=_identity)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for k, (uid, value, error) in enumerate(loader, start=1):
            if error is not None:
                skipped[uid] = error
                values.pop(uid, None)
            else:
                values[uid] = value
                cache["stamps"][uid] = stamps[uid]
            if k % SAVE_EVERY == 0:  # a killed run keeps what it computed
                _atomic_torch_save(cache, path)
        _atomic_torch_save(cache, path)
    wanted = {u.id for u in utterances}
    return FeatureSet({k: v for k, v in values.items() if k in wanted and k not in skipped}, skipped)


def cached_mels(
    utterances: Sequence[Utterance], params: AudioParams, cache_dir: Path, workers: int = 0, log: Callable = print
) -> FeatureSet:
    return cached_feature("mels", partial(mel_feature, params=params), utterances, params, cache_dir, workers, log)


def cached_f0(
    utterances: Sequence[Utterance], params: AudioParams, cache_dir: Path, workers: int = 0, log: Callable = print
) -> FeatureSet:
    return cached_feature("f0", partial(f0_feature, params=params), utterances, params, cache_dir, workers, log)


def cached_phonemes(texts: Sequence[str], front: TextFrontEnd, cache_dir: Path) -> dict[str, list[str]]:
    """text -> symbols, remembered in `cache_dir/symbols-<front end>.json` (espeak-ng is slow-ish)."""
    ph = front.phonemizer
    path = cache_dir / f"symbols-{ph.kind}-{getattr(ph, 'voice', 'none')}.json"
    cache: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    for t in missing:
        cache[t] = front.symbols_of(t)
    if missing:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache, ensure_ascii=False))
        os.replace(tmp, path)
    return cache


def pitch_energy_statistics(
    f0: Sequence[torch.Tensor], mels: Sequence[torch.Tensor]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """(mean, sd) of voiced log-F0 and of frame log-energy (logsumexp of the log-mel) over training clips."""
    logf0 = torch.cat([torch.log(x[x > 0]) for x in f0])
    energy = torch.cat([torch.logsumexp(m.float(), dim=-1) for m in mels])
    if logf0.numel() < 2:
        raise ValueError("no voiced frame in the training audio: cannot set pitch targets")
    return (float(logf0.mean()), float(logf0.std().clamp(min=1e-3))), (
        float(energy.mean()),
        float(energy.std().clamp(min=1e-3)),
    )
