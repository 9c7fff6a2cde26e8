"""`toonlab export OUT --to DEST [--filter TEXT] [--format parquet|webdataset]`: the rows (and samples) that pass a
filter, copied to a new dataset directory, with the drop counts of each clause in DEST/_stats.json. The filter
language is in filter.py.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.card import write_card
from toonlab.curate.shards import CLIPS_DIR, SAMPLE_COLUMNS, sample_keys
from toonlab.curate.sidecar import metadata_files, read_shard, sidecar_names
from toonlab.curate.steps.filter import (
    ClauseCount,
    Node,
    check_columns,
    clauses,
    columns_of,
    dataset_columns,
    parse,
    select,
    to_text,
)


def _copy_samples(src: Path, dest: Path, keys: set[str]) -> int:
    """Copy every member of the selected samples (`<sample key>.<ext>`) from one tar to a new one; returns members."""
    copied = 0
    with tarfile.open(src) as source, tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as target:
        for member in source:
            if member.isfile() and member.name.split(".", 1)[0] in keys:
                target.addfile(member, source.extractfile(member))
                copied += 1
    return copied


def export(out: Path, dest: Path, filter_text: str | None = None, fmt: str = "parquet") -> dict:
    """Write the rows of dataset `out` that pass `filter_text` (all rows without one) to `dest`.

    `fmt`: parquet (metadata with sidecar columns) or webdataset (that, plus the samples' tar members). The source
    is only read. `dest` is built under a temporary name and renamed into place; it must not exist (or be empty)."""
    if fmt not in ("parquet", "webdataset"):
        raise ValueError(f"--format must be parquet or webdataset, got {fmt!r}")
    out, dest = Path(out).resolve(), Path(dest).resolve()
    if dest == out or out in dest.parents or dest in out.parents:
        raise ValueError(f"--to {dest} must lie outside the source dataset {out} (and not contain it)")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"--to {dest} already exists and is not empty")
    node = parse(filter_text) if filter_text and filter_text.strip() else None
    parts = clauses(node) if node else []
    if node:
        check_columns(node, dataset_columns(out))
    counts = [ClauseCount(to_text(p)) for p in parts]
    needed = sorted(columns_of(node)) if node else []

    work = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    (work / "metadata").mkdir(parents=True)
    if fmt == "webdataset":
        (work / "shards").mkdir()
    try:
        stats = _write_selection(out, work, parts, counts, needed, fmt)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # a failed export leaves nothing behind
        raise
    stats = {"source": str(out), "filter": filter_text or None, "format": fmt, **stats}
    (work / "_stats.json").write_text(json.dumps(stats, indent=2))
    write_card(work)
    if dest.exists():
        dest.rmdir()
    os.replace(work, dest)
    return stats


def _write_selection(
    out: Path, work: Path, parts: list[Node], counts: list[ClauseCount], needed: list[str], fmt: str
) -> dict:
    """Filter shard by shard into `work`; returns the counts."""
    rows_in = rows_out = members = 0
    shards_written = []
    for meta_file in metadata_files(out):
        keep = select(read_shard(out, meta_file, needed), parts, counts)
        rows_in += len(keep)
        kept = pc.sum(keep).as_py() or 0
        if not kept:
            continue
        table = read_shard(out, meta_file).filter(keep)
        pq.write_table(table, work / "metadata" / meta_file.name, compression="zstd")
        if fmt == "webdataset":
            rows = table.select([c for c in SAMPLE_COLUMNS if c in table.column_names]).to_pylist()
            tar = out / "shards" / f"{meta_file.stem}.tar"
            members += _copy_samples(tar, work / "shards" / tar.name, set().union(*map(sample_keys, rows)))
            clips = out / CLIPS_DIR / tar.name
            if clips.exists():
                (work / CLIPS_DIR).mkdir(exist_ok=True)
                members += _copy_samples(clips, work / CLIPS_DIR / tar.name, {r["key"] for r in rows})
        rows_out += kept
        shards_written.append(meta_file.stem)
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_dropped": rows_in - rows_out,
        "clauses": [c.__dict__ for c in counts],
        "shards": shards_written,
        "tar_members": members if fmt == "webdataset" else None,
        "sidecars_merged": sidecar_names(out),
    }
