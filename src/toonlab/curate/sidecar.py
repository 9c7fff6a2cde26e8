"""Sidecar columns: dataset-wide results (dup_cluster, split, ...) stored beside the shards, never inside them.

Layout: `OUT/columns/<name>/<shard>.parquet`, one file per `OUT/metadata/<shard>.parquet`, holding `identifier` plus
the step's columns, rows in the metadata file's order; `OUT/columns/<name>/_params.json` records how it was made.
Shards and metadata are never rewritten, so a global step can be rerun with other settings at no risk, and each
sidecar is a plain parquet dataset (`pyarrow.dataset.dataset("OUT/columns/split")`; pyarrow skips `_`-files).
`read_dataset` joins metadata and every sidecar by identifier, shard by shard.

A step replaces its whole folder at once: it writes a fresh, uniquely named `columns/.<name>.<random>.tmp/`, then
renames the old folder away and the new one in, so readers see the old or the new sidecar, never a mix of runs
(and no folder that was there before, whatever its name, is removed). A shard added after the step ran
has no sidecar file: its rows read as null until the step is rerun.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.pairs import upgrade_maps
from toonlab.io import replace_dir, scratch_dir

COLUMNS_DIR = "columns"


def metadata_files(out: Path) -> list[Path]:
    """The dataset's committed metadata files, in shard order."""
    files = sorted((Path(out) / "metadata").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{out} has no metadata/*.parquet: not a curated dataset (run `toonlab curate`)")
    return files


def write_sidecar(out: Path, name: str, tables: Mapping[str, pa.Table], params: dict) -> Path:
    """Replace sidecar `name` with one table per shard (each must have an `identifier` column)."""
    root = Path(out) / COLUMNS_DIR
    final, tmp = root / name, scratch_dir(root / name, "tmp")
    try:
        for shard, table in tables.items():
            if "identifier" not in table.column_names:
                raise ValueError(f"sidecar {name}/{shard} has no identifier column")
            pq.write_table(table, tmp / f"{shard}.parquet", compression="zstd")
        (tmp / "_params.json").write_text(json.dumps(params, indent=2, sort_keys=True))
        replace_dir(final, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only this call's scratch folder (gone already once swapped in)
    return final


def sidecar_names(out: Path) -> list[str]:
    root = Path(out) / COLUMNS_DIR
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.exists() else []


def sidecar_schema(out: Path, name: str) -> pa.Schema | None:
    files = sorted((Path(out) / COLUMNS_DIR / name).glob("*.parquet"))
    return pq.read_schema(files[0]) if files else None


def read_shard(out: Path, meta_file: Path, columns: list[str] | None = None) -> pa.Table:
    """One metadata file with every sidecar's columns appended, aligned by identifier (null where missing).

    `columns`: restrict to these (identifier is always read, for the join)."""
    wanted = None if columns is None else set(columns)
    base_cols = None
    if wanted is not None:
        names = pq.read_schema(meta_file).names
        base_cols = [c for c in names if c in wanted or c == "identifier"]
    table = upgrade_maps(pq.read_table(meta_file, columns=base_cols))  # record version 1 stored maps
    ids = table.column("identifier")
    for name in sidecar_names(out):
        schema = sidecar_schema(out, name)
        extra = [f for f in schema if f.name != "identifier" and f.name not in table.column_names]
        extra = [f for f in extra if wanted is None or f.name in wanted]
        if not extra:
            continue
        path = Path(out) / COLUMNS_DIR / name / meta_file.name
        if not path.exists():
            for f in extra:
                table = table.append_column(f, pa.nulls(len(table), f.type))
            continue
        side = pq.read_table(path, columns=["identifier", *(f.name for f in extra)])
        order = pc.index_in(ids, value_set=side.column("identifier"))  # row in the sidecar of each metadata row
        for f in extra:
            table = table.append_column(f, side.column(f.name).take(order))
    return table


def read_dataset(out: Path, columns: list[str] | None = None) -> pa.Table:
    """The whole dataset's metadata plus sidecar columns as one table."""
    return pa.concat_tables([read_shard(out, f, columns) for f in metadata_files(out)], promote_options="default")
