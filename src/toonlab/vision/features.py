"""Inputs to a model's trained part: frozen-prefix outputs computed once (and cached on disk), or raw frames.

`VideoInputs` holds, per distinct drawing of a split, the video tower's prefix output when that prefix does
work (frozen or partially frozen towers), else the uint8 frames, whose prefix (a dtype conversion) runs per batch.
`take(idx, reverse)` returns the (B, N, ...) inputs of shots `idx`, playback reversed when asked. `TextInputs`
holds the text prefix output of every distinct caption (tokens when the tower is trained whole).

Disk cache: `cache_dir/features-<key>.pt`, keyed by the tower, its mode and cut, the frame size, the split's
content and, for randomly initialised towers, the seed. Loaded with `weights_only=True`. It is built in parts
that are saved as they finish, so an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch

from toonlab.vision.data import ShotSet
from toonlab.vision.towers import SplitTower

CHUNK = 64  # rows per forward pass
PART = 2048  # rows per saved part of a cache being built


def take(state: Any, idx: torch.Tensor) -> Any:
    """Index a tensor or a tuple of tensors along dim 0."""
    if isinstance(state, tuple):
        return tuple(s[idx] for s in state)
    return state[idx]


def to_device(state: Any, device: torch.device) -> Any:
    if isinstance(state, tuple):
        return tuple(s.to(device) for s in state)
    return state.to(device)


def _cat(outs: list[Any]) -> Any:
    if isinstance(outs[0], tuple):
        return tuple(torch.cat([o[k] for o in outs]) for k in range(len(outs[0])))
    return torch.cat(outs)


def _run_chunks(fn: Callable[[Any], Any], state: Any, start: int, stop: int, device: torch.device) -> Any:
    """fn over rows [start, stop) of `state`, CHUNK rows at a time, results on the CPU."""
    outs = []
    for i in range(start, stop, CHUNK):
        rows = torch.arange(i, min(stop, i + CHUNK))
        outs.append(to_device(fn(to_device(take(state, rows), device)), "cpu"))
    return _cat(outs)


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _cache_path(cache_dir: Path, key: dict) -> Path:
    return Path(cache_dir) / f"features-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.pt"


def tower_outputs(
    tower: SplitTower, fn: Callable[[Any], Any], state: Any, n: int, device, cache_dir: Path | None, key: dict
) -> Any:
    """`fn` (the tower's prefix) over n rows, keyed by the tower's cut. When a cache of the same tower at a lower
    cut exists, only the stages between the two cuts run (a frozen tower's features from a partial one's cache)."""
    key = {**key, "cut": tower.cut}
    if cache_dir is not None and not _cache_path(cache_dir, key).exists():
        for lower in range(tower.cut - 1, 0, -1):
            path = _cache_path(cache_dir, {**key, "cut": lower})
            if path.exists():
                state = torch.load(path, map_location="cpu", weights_only=True)["state"]
                fn = partial(tower.run_stages, start=lower, stop=tower.cut)
                break
    return prefix_outputs(fn, state, n, device, cache_dir, key)


def prefix_outputs(
    fn: Callable[[Any], Any], state: Any, n: int, device: torch.device, cache_dir: Path | None, key: dict
) -> Any:
    """fn over all n rows of `state`. With a cache folder the result is kept, and computed in parts of PART rows
    saved as they finish, so a run stopped part-way resumes from the last finished part."""
    if cache_dir is None:
        return _run_chunks(fn, state, 0, n, device)
    path = _cache_path(cache_dir, key)
    name = path.stem.removeprefix("features-")
    if path.exists():
        return torch.load(path, map_location="cpu", weights_only=True)["state"]
    parts_dir = Path(cache_dir) / f".features-{name}.parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, n, PART):
        part = parts_dir / f"{start:09d}.pt"
        if not part.exists():
            _save(part, {"state": _run_chunks(fn, state, start, min(n, start + PART), device)})
        parts.append(torch.load(part, map_location="cpu", weights_only=True)["state"])
    result = _cat(parts)
    _save(path, {"key": key, "state": result})
    shutil.rmtree(parts_dir, ignore_errors=True)
    return result


def _split_digest(shots: ShotSet) -> str:
    return hashlib.sha256(("\n".join(shots.keys) + f"|{tuple(shots.frames.shape)}").encode()).hexdigest()[:16]


@dataclass
class VideoInputs:
    store: torch.Tensor  # (F, ...) prefix outputs, or (F, 3, H, W) uint8 frames when not cached
    index: torch.Tensor  # (S, N)
    cached: bool

    def take(self, encoder: torch.nn.Module, idx: torch.Tensor, device: torch.device, reverse: bool = False):
        """(B, N, ...) suffix inputs and the (B, N) frame mask for shots `idx`."""
        index = self.index[idx]
        if reverse:
            index = index.flip(1)
        h = self.store[index].to(device)  # (B, N, ...)
        if not self.cached:
            flat = encoder.prefix(h.flatten(0, 1))
            h = flat.view(*index.shape, *flat.shape[1:])
        return h, torch.ones(index.shape, dtype=torch.bool, device=device)


def video_inputs(
    encoder: torch.nn.Module, shots: ShotSet, device: torch.device, cache_dir: Path | None, key: dict
) -> VideoInputs:
    if not encoder.cached:
        return VideoInputs(shots.frames, shots.index, cached=False)
    key = {**key, "split": _split_digest(shots), "kind": "video"}
    encoder.eval()
    store = tower_outputs(encoder.tower, encoder.prefix, shots.frames, len(shots.frames), device, cache_dir, key)
    return VideoInputs(store, shots.index, cached=True)


def text_inputs(
    encoder: torch.nn.Module, captions: list[str], device: torch.device, cache_dir: Path | None, key: dict
) -> Any:
    """The text prefix state of every distinct caption ((U, D), or (hidden, mask), or (ids, mask))."""
    tokens = encoder.tower.tokenize(captions)
    if not encoder.cached:
        return tokens
    key = {**key, "captions": hashlib.sha256("\n".join(captions).encode()).hexdigest()[:16], "kind": "text"}
    encoder.eval()
    return tower_outputs(encoder.tower, encoder.tower.prefix, tokens, len(captions), device, cache_dir, key)
