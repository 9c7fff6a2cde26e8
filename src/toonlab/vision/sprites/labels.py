"""Per-clip labels and captions: `OUT/sprite_labels.parquet`, then joined per shot as the `sprite_labels`
sidecar column set (`OUT/columns/sprite_labels/<shard>.parquet`, see curate's sidecar.py), so every curated shot
carries its clip's character, kind, action, direction, package, licence and both captions."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.sidecar import metadata_files, write_sidecar

NAME = "sprite_labels"
LABELS_FILE = "sprite_labels.parquet"
LABEL_COLUMNS = ("character", "character_group", "variant", "kind", "action", "direction", "package", "licence")
OPTIONAL_COLUMNS = ("attack", "attack_range", "attack_type")
SCHEMA = pa.schema(
    [("clip_id", pa.string())]
    + [(c, pa.string()) for c in LABEL_COLUMNS + OPTIONAL_COLUMNS]
    + [
        ("background", pa.string()),
        ("caption", pa.string()),
        ("caption_description", pa.string()),
        ("description", pa.string()),
        ("drawings", pa.int32()),  # distinct drawings in one play
        ("play_ms", pa.float64()),  # one play of the animation as the game times it
        ("frames", pa.int32()),  # frames of the rendered clip at 24 fps
        ("mean_hold", pa.float64()),  # mean frames each drawing is held (2 = on twos)
    ]
)


def write_labels(out: Path, rows: list[dict]) -> Path:
    """Write the per-clip label table atomically; returns its path."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    path = Path(out) / LABELS_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def attach(out: Path) -> dict:
    """Join the label table to every curated shot by its source clip; writes the sidecar. Returns counts."""
    out = Path(out)
    labels = pq.read_table(out / LABELS_FILE)
    by_clip = {clip: i for i, clip in enumerate(labels.column("clip_id").to_pylist())}
    columns = [f.name for f in SCHEMA]
    tables, shots, unmatched = {}, 0, 0
    for meta in metadata_files(out):
        rows = pq.read_table(meta, columns=["identifier", "source"]).to_pylist()
        picks = [by_clip.get(Path(r["source"]).stem) for r in rows]
        unmatched += sum(p is None for p in picks)
        arrays = [pa.array([r["identifier"] for r in rows], pa.string())]
        for name in columns:
            values = labels.column(name).to_pylist()
            arrays.append(pa.array([values[p] if p is not None else None for p in picks], SCHEMA.field(name).type))
        tables[meta.stem] = pa.Table.from_arrays(arrays, names=["identifier", *columns])
        shots += len(rows)
    write_sidecar(out, NAME, tables, {"labels": LABELS_FILE, "join": "metadata source stem = clip_id"})
    return {"shots": shots, "shots_without_labels": unmatched}
