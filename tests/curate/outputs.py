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


def as_version_1(src: Path, dest: Path) -> Path:
    """A copy of curate output `src` in the record-version-1 layout: key -> value columns as arrow maps, one shard
    sample per shot (`<key>.json` with the whole row, `<key>.<frame:06d>.jpg`, `<key>.txt` when captioned)."""
    import io
    import json
    import shutil
    import tarfile

    import pyarrow as pa

    from toonlab.curate.pairs import is_pairs
    from toonlab.curate.shards import iter_shots

    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("shards", "metadata", "README.md", "splits", "_ledger*"))
    ledger = [json.loads(line) for line in (src / "_ledger.jsonl").read_text().splitlines()]
    (dest / "_ledger.jsonl").write_text("".join(json.dumps({**e, "v": 1}) + "\n" for e in ledger))
    (dest / "metadata").mkdir()
    (dest / "shards").mkdir()
    for meta in sorted((src / "metadata").glob("*.parquet")):
        table = pq.read_table(meta)
        for i, f in enumerate(table.schema):
            if is_pairs(f.type):
                kind = pa.map_(pa.string(), f.type.value_type.field("value").type)
                maps = [None if v is None else [(e["key"], e["value"]) for e in v] for v in table.column(i).to_pylist()]
                table = table.set_column(i, pa.field(f.name, kind), pa.array(maps, kind))
        table = table.set_column(
            table.schema.get_field_index("record_version"), "record_version", pa.array([1] * len(table), pa.int32())
        )
        pq.write_table(table, dest / "metadata" / meta.name)
        rows = {r["key"]: r for r in table.to_pylist()}
        with tarfile.open(dest / "shards" / f"{meta.stem}.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
            for shot in iter_shots(src / "shards" / f"{meta.stem}.tar"):
                row = rows[shot.key]
                members = {"json": json.dumps(row, default=str).encode()}
                members |= {f"{frame:06d}.jpg": data for frame, data in sorted(shot.images.items())}
                if row.get("text_description"):
                    members["txt"] = row["text_description"].encode()
                for ext, data in members.items():
                    info = tarfile.TarInfo(f"{shot.key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return dest
