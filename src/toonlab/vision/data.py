"""One split of a curated dataset in memory: each shot's N keyframes, its caption and its labels.

Shots are read with `toonlab.curate.dataset.KeyframeDataset` (shards + metadata + sidecar columns such as
`split` and the label columns). Each shot's N picks (hold-weighted by default: the drawing on screen at N evenly
spaced instants, so holds count) are stored once per distinct drawing: `frames` (F, 3, H, W) uint8 holds every
distinct drawing of the split and `index` (S, N) points into it, so frozen towers run once per drawing and
playback can be reversed by flipping `index`.

The caption is the `caption_column` of the row when the dataset has it, else the shard's caption text. A loaded
split is saved under `cache_dir` (a `.pt` read back with `weights_only=True`), keyed by the dataset's metadata
files (name, size, mtime) and the loading parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from toonlab.curate.readers.dataset import SAMPLERS, KeyframeDataset
from toonlab.curate.sidecar import COLUMNS_DIR, metadata_files

FORMAT = 1


@dataclass
class ShotSet:
    keys: list[str]
    frames: torch.Tensor  # (F, 3, H, W) uint8, distinct drawings
    index: torch.Tensor  # (S, N) int64 into frames
    captions: list[str]  # (S,)
    labels: dict[str, list[str | None]]  # column -> (S,) values

    def __len__(self) -> int:
        return len(self.keys)

    def caption_ids(self) -> tuple[list[str], torch.Tensor]:
        """Distinct captions (first-seen order) and each shot's id into them: (U,), (S,)."""
        unique: dict[str, int] = {}
        ids = [unique.setdefault(c, len(unique)) for c in self.captions]
        return list(unique), torch.tensor(ids, dtype=torch.long)

    def to_payload(self) -> dict:
        return {
            "format": FORMAT,
            "keys": self.keys,
            "frames": self.frames,
            "index": self.index,
            "captions": self.captions,
            "labels": self.labels,
        }

    @classmethod
    def from_payload(cls, payload: dict) -> ShotSet:
        if payload.get("format") != FORMAT:
            raise ValueError(f"shot cache format {payload.get('format')} is not {FORMAT}")
        return cls(payload["keys"], payload["frames"], payload["index"], payload["captions"], payload["labels"])


def dataset_fingerprint(out: Path) -> str:
    """Changes when any metadata or sidecar file of the dataset changes."""
    digest = hashlib.sha256()
    files = [*metadata_files(out), *sorted((Path(out) / COLUMNS_DIR).rglob("*.parquet"))]
    for path in files:
        stat = path.stat()
        digest.update(f"{path.relative_to(out)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def load_shots(
    out: Path | str,
    split: str,
    n_frames: int,
    size: int,
    caption_column: str = "caption",
    label_columns: Sequence[str] = (),
    sampler: str = "hold",
    cache_dir: Path | str | None = None,
    limit: int | None = None,
) -> ShotSet:
    """Shots of `split` (the `split` sidecar column, from `toonlab split`) as a ShotSet; `limit` keeps the first N."""
    out = Path(out)
    params = [split, n_frames, size, caption_column, list(label_columns), sampler, limit, dataset_fingerprint(out)]
    cache = None
    if cache_dir is not None:
        name = hashlib.sha256(json.dumps(params).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"shots-{split}-{name}.pt"
        if cache.exists():
            return ShotSet.from_payload(torch.load(cache, map_location="cpu", weights_only=True))
    shots = _read(out, split, n_frames, size, caption_column, label_columns, sampler, limit)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp{os.getpid()}")
        torch.save(shots.to_payload(), tmp)
        os.replace(tmp, cache)
    return shots


def _read(out, split, n_frames, size, caption_column, label_columns, sampler, limit) -> ShotSet:
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; known: {', '.join(SAMPLERS)}")

    def wanted(row: dict) -> bool:
        if "split" not in row:
            raise ValueError(f"{out} has no split column: run `toonlab split {out}` first")
        return row["split"] == split

    dataset = KeyframeDataset(out, SAMPLERS[sampler](n_frames), (size, size), where=wanted, rank=0, world_size=1)
    keys, frames, index, captions = [], [], [], []
    labels: dict[str, list] = {c: [] for c in label_columns}
    for sample in dataset:
        if limit is not None and len(keys) >= limit:
            break
        positions: dict[int, int] = {}
        for frame, number in zip(sample["frames"], sample["frame_indices"].tolist(), strict=True):
            if number not in positions:
                positions[number] = len(frames)
                frames.append(frame)
        index.append([positions[n] for n in sample["frame_indices"].tolist()])
        keys.append(sample["key"])
        row = sample["row"]
        captions.append(str(row.get(caption_column) or sample["caption"]))
        for column in label_columns:
            value = row.get(column)
            labels[column].append(None if value is None else str(value))
    if not keys:
        raise ValueError(f"{out}: no shots in split {split!r}")
    stacked = torch.stack(frames) if frames else torch.zeros(0, 3, size, size, dtype=torch.uint8)
    return ShotSet(keys, stacked, torch.tensor(index, dtype=torch.long), captions, labels)
