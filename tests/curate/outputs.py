"""Reading a curate output folder back in tests: rows without the shard they landed in, and error rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq


def rows_without_shard(out: Path) -> list[dict]:
    """Metadata rows sorted by identifier, minus `shard` (which differs between equivalent runs)."""
    if not (out / "metadata").exists():
        return []
    rows = ds.dataset(out / "metadata", format="parquet").to_table().to_pylist()
    return sorted(({k: v for k, v in r.items() if k != "shard"} for r in rows), key=lambda r: r["identifier"])


def error_rows(out: Path, fields: tuple[str, ...] = ("source", "stage", "reason")) -> list[tuple]:
    return sorted(tuple(e[f] for f in fields) for e in pq.read_table(out / "errors.parquet").to_pylist())
