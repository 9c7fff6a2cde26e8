"""Where a report goes: built whole in a fresh scratch folder beside `--out`, then swapped in, so a report
replaces only an earlier report's own files.

Each report lists the files it wrote in `.toonlab-report.json`. `--out` must be absent, an empty folder, or such
a report holding nothing else; any other folder (a home folder with its own `shots/`, a report a user added notes
to) is refused whole, before anything is written, and keeps every file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from toonlab.io import replace_dir, scratch_dir

MARKER = ".toonlab-report.json"


def _entries(root: Path) -> set[str]:
    """Every path under `root` (folders, files, links; links not followed), relative, '/'-separated."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        found.update((rel / name).as_posix() for name in (*dirs, *files))
    return found


def _written(files: list[str]) -> set[str]:
    """The files a report listed plus the folders that hold them."""
    return set(files) | {parent.as_posix() for f in files for parent in Path(f).parents if parent != Path(".")}


def check_dest(dest: Path) -> None:
    """Raise ValueError (one line) unless `dest` is absent, empty, or a report holding only its own files."""
    if not dest.exists() and not dest.is_symlink():
        return
    if not dest.is_dir() or dest.is_symlink():
        raise ValueError(f"--out {dest} exists and is not a folder")
    if not any(dest.iterdir()):
        return
    try:
        listed = json.loads((dest / MARKER).read_text())["files"]
        written = _written([str(f) for f in listed])
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"--out {dest} is not empty and is not a toonlab report (no readable {MARKER}): "
            "choose a new or empty folder"
        ) from None
    foreign = sorted(_entries(dest) - written - {MARKER})
    if foreign:
        raise ValueError(
            f"--out {dest} holds {len(foreign)} path(s) the report did not write (first: {foreign[0]}): "
            "move them away or choose another folder"
        )


def publish(dest: Path, build: Callable[[Path], Path]) -> Path:
    """Check `dest`, run `build(folder)` (it writes a whole report there and returns its index.html) in a fresh
    scratch folder beside `dest`, list what it wrote in the marker, then swap it in; returns dest's index.html.
    A failed build removes only its scratch folder."""
    check_dest(dest)
    work = scratch_dir(dest, "report")
    try:
        index = build(work)
        (work / MARKER).write_text(json.dumps({"toonlab_report": 1, "files": sorted(_entries(work))}, indent=0))
        check_dest(dest)  # again just before the swap: files added meanwhile stop it
        replace_dir(dest, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # only this run's scratch folder (gone already once swapped in)
    return dest / index.relative_to(work)
