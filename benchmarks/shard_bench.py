"""Shard tar writing: `tarfile` (the library) against toonlab's `TarAppender`, the same members, one run.

    python benchmarks/shard_bench.py [--samples 2000] [--image-kb 30] [--repeats 5]

A shard as curate writes it: per keyframe sample a ~250-byte json member and an image member (random bytes of
the given size: the payload is copied, not inspected). Both writers go to files in a temporary folder (page
cache; fsync is the same for both and left out). The two archives must be byte-identical (checked). Times are
the best of `--repeats`; they never gate anything.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from toonlab.curate.tarwrite import TarAppender  # noqa: E402

Members = list[tuple[str, bytes]]


def with_tarfile(path: Path, members: Members) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))


def with_appender(path: Path, members: Members) -> None:
    tar = TarAppender(path)
    for name, data in members:
        tar.add(name, data)
    tar.close()


def shard_members(samples: int, image_bytes: int) -> Members:
    image = bytes(range(256)) * (image_bytes // 256)
    doc = b'{"caption": "", "frame": 0, "identifier": "clip-1234abcd:1", "keyframes": 12}'.ljust(250)
    members = []
    for i in range(samples):
        key = f"clip-1234abcd_{i // 12 + 1:04d}_{i:06d}"
        members += [(f"{key}.json", doc), (f"{key}.jpg", image)]
    return members


def best_of(write: Callable[[Path, Members], None], members: Members, folder: Path, repeats: int) -> tuple[float, str]:
    times, digest = [], ""
    for i in range(repeats):
        path = folder / f"{write.__name__}-{i}.tar"
        t = time.perf_counter()
        write(path, members)
        times.append(time.perf_counter() - t)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        path.unlink()
    return min(times), digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--image-kb", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    members = shard_members(args.samples, args.image_kb * 1024)
    megabytes = sum(len(d) for _, d in members) / 1e6
    with tempfile.TemporaryDirectory() as folder:
        lib, lib_digest = best_of(with_tarfile, members, Path(folder), args.repeats)
        ours, our_digest = best_of(with_appender, members, Path(folder), args.repeats)
    table = Table(title=f"shard tar: {len(members)} members, {megabytes:.0f} MB (best of {args.repeats})")
    for column in ("writer", "seconds", "us / member", "MB/s", "vs tarfile"):
        table.add_column(column, justify="left" if column == "writer" else "right")
    for label, seconds in (("tarfile (library)", lib), ("toonlab TarAppender", ours)):
        per = seconds / len(members) * 1e6
        table.add_row(label, f"{seconds:.3f}", f"{per:.1f}", f"{megabytes / seconds:.0f}", f"{lib / seconds:.2f}x")
    Console().print(table)
    print("byte-identical archives:", lib_digest == our_digest)
    if lib_digest != our_digest:
        sys.exit(1)


if __name__ == "__main__":
    main()
