"""Small JPEG thumbnails of the sampled shots' keyframes, cut from the shards into the report folder.

Per shot, a strip of up to `strip` keyframes spread evenly over its drawings. Only the shards' tar headers are
walked and the wanted members read (other samples' bytes are skipped), so a 240-shot gallery over a large dataset
reads a few MB of images, not the shards. JPEGs are decoded at reduced scale (`draft`) before resizing.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonlab.extras import require


@dataclass(frozen=True)
class Thumb:
    frame: int  # absolute frame number of the drawing
    hold: int  # frames it stays on screen (cut short by the shot end for the last one)
    file: str  # relative to the report folder
    width: int
    height: int


def strip_frames(keyframes: list[int], strip: int) -> list[int]:
    """Up to `strip` drawings spread evenly over the shot, first and last included, no repeats."""
    if len(keyframes) <= strip:
        return list(keyframes)
    return [keyframes[i] for i in np.linspace(0, len(keyframes) - 1, strip).round().astype(int)]


def _holds(row: dict) -> dict[int, int]:
    frames = row["keyframe_indices"]
    return {f: nxt - f for f, nxt in zip(frames, [*frames[1:], row["end_frame"]], strict=True)}


def _thumbnail(data: bytes, path: Path, box: tuple[int, int]) -> tuple[int, int]:
    image_mod = require("PIL.Image")
    with image_mod.open(io.BytesIO(data)) as image:
        image.draft("RGB", box)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that still covers the box
        small = image.convert("RGB")
        small.thumbnail(box, image_mod.Resampling.BICUBIC)
    small.save(path, "JPEG", quality=82, optimize=True)
    return small.size


def tar_members(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, data offset, size) of each regular file in one of our (USTAR) shards, reading only the headers.

    tarfile spends ~150 us per member; a shard of 2000 shots holds ~70k members, so this plain 512-byte header walk
    (seek, read, parse name and size) is what makes a gallery over many large shards take seconds, not minutes.
    """
    with open(path, "rb") as fh:
        offset = 0
        while True:
            fh.seek(offset)
            header = fh.read(512)
            if len(header) < 512 or header == bytes(512):  # end-of-archive marker
                return
            name = header[:100].rstrip(b"\0").decode()
            prefix = header[345:500].rstrip(b"\0").decode()  # USTAR: long names are split into prefix/name
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
            if header[156:157] in (b"0", b"\0"):  # regular file
                yield (f"{prefix}/{name}" if prefix else name), offset + 512, size
            offset += 512 + (size + 511) // 512 * 512


def extract_thumbnails(
    rows: list[dict], shards: Path, dest: Path, strip: int = 12, box: tuple[int, int] = (240, 180)
) -> dict[str, list[Thumb]]:
    """key -> its strip's thumbnails written under `dest/thumbs/<key>/`; shots without stored images get []."""
    wanted: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)  # shard -> key -> {member stem: hold}
    for row in rows:
        holds = _holds(row)
        wanted[row["shard"]][row["key"]] = {f"{f:06d}": holds[f] for f in strip_frames(row["keyframe_indices"], strip)}
    thumbs: dict[str, list[Thumb]] = {row["key"]: [] for row in rows}
    for shard, keys in wanted.items():
        path = shards / f"{shard}.tar"
        if not path.exists():
            continue
        with open(path, "rb") as fh:
            for name, offset, size in tar_members(path):
                key, _, ext = name.rsplit("/", 1)[-1].partition(".")
                stem, _, kind = ext.partition(".")
                if key not in keys or stem not in keys[key] or kind not in ("jpg", "jpeg", "webp", "png"):
                    continue
                folder = dest / "thumbs" / key
                folder.mkdir(parents=True, exist_ok=True)
                fh.seek(offset)
                width, height = _thumbnail(fh.read(size), folder / f"{stem}.jpg", box)
                thumbs[key].append(Thumb(int(stem), keys[key][stem], f"thumbs/{key}/{stem}.jpg", width, height))
    for strip_ in thumbs.values():
        strip_.sort(key=lambda t: t.frame)
    return thumbs
