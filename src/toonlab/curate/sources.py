"""Turn CLI inputs (files, folders searched recursively, globs) into a deterministic VideoRef stream."""

from __future__ import annotations

import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

from toonlab.curate.records import VideoRef

VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mkv .webm .avi .mov .mpg .mpeg .ogv .flv .wmv .ts .m2ts .y4m .gif".split())


class InputError(ValueError):
    """An input argument names nothing usable (the run cannot start)."""


def iter_sources(inputs: Sequence[str]) -> Iterator[VideoRef]:
    """Yield each video once, in sorted order within each input, in the order inputs were given.

    Explicit files are taken whatever their extension (a bad one becomes an error row later);
    folders and globs are filtered to known video extensions.
    """
    seen: set[Path] = set()
    for item in inputs:
        for path in _expand(item):
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield VideoRef(source=str(path), path=path)


def _expand(item: str) -> list[Path]:
    path = Path(item)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if glob.has_magic(item):
        matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        return [p for p in matches if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    raise InputError(f"input not found: {item}")
