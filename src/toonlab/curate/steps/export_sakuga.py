"""Export curate metadata to the exact Sakuga-42M release parquet schema, for tools built on that release.

The release has 26 columns in a fixed order with string formats of its own: `file_size` as MiB with two
decimals (`"1.61MB"`), frame counts as doubles, taxonomy as `name(label: n)` (the release data also contains the
typo `lable`; we always write `label`) and a leftover pandas index `__index_level_0__`. Values we do not have
(e.g. `user_tags`, or a column whose annotator did not run) are null, never invented. Our own columns stay in
our metadata; this is a lossy view. Rows are streamed one record batch at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.taxonomy_table import AXES, OTHERS, TABLE

SAKUGA_SCHEMA = pa.schema(
    [
        ("identifier", pa.string()),
        ("hash_identifier", pa.string()),
        ("url_link", pa.string()),
        ("scene_start_time", pa.string()),
        ("scene_end_time", pa.string()),
        ("frame_number", pa.float64()),
        ("key_frame_number", pa.float64()),
        ("anime_tags", pa.string()),
        ("user_tags", pa.string()),
        ("text_description", pa.string()),
        ("aesthetic_score", pa.float64()),
        ("dynamic_score", pa.float64()),
        ("rating", pa.string()),
        ("text_prob", pa.float64()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("file_ext", pa.string()),
        ("file_size", pa.string()),
        ("fps", pa.float64()),
        ("Taxonomy_Time", pa.string()),
        ("Taxonomy_Venue", pa.string()),
        ("Taxonomy_Media", pa.string()),
        ("Taxonomy_Filming", pa.string()),
        ("Taxonomy_Composition", pa.string()),
        ("Taxonomy_Character", pa.string()),
        ("__index_level_0__", pa.int64()),
    ]
)

# Class name -> label per taxonomy axis, as in the release (taxonomy_table.py); every axis also has Others (-1).
TAXONOMY_LABELS: dict[str, dict[str, int]] = {
    f"Taxonomy_{axis}": {c.name: c.label for c in TABLE if c.axis == axis} for axis in AXES
}
_FORMATTED = re.compile(r"^(?P<name>[^()]+)\((?:label|lable): (?P<label>-?\d+)\)$")


def file_size_text(size: int | None) -> str | None:
    """Bytes -> the release's `"1.61MB"` (MiB, two decimals)."""
    return None if size is None else f"{size / 2**20:.2f}MB"


def taxonomy_text(axis: str, value: str | None) -> str | None:
    """A class name (or an already formatted `name(label: n)`) -> `name(label: n)`; null stays null."""
    if value is None:
        return None
    match = _FORMATTED.match(value)
    name = match["name"] if match else value
    labels = TAXONOMY_LABELS[axis]
    if name == OTHERS[0]:
        label = OTHERS[1]
    elif name in labels:
        label = labels[name]
    else:
        raise ValueError(f"{axis}: unknown class {name!r}; known: {', '.join([*labels, OTHERS[0]])}")
    if match and int(match["label"]) != label:
        raise ValueError(f"{axis}: {value!r} has label {match['label']}, the release uses {label} for {name}")
    return f"{name}(label: {label})"


def _tags(value) -> str | None:
    """Space-separated tags from a string or a list of tags."""
    if value is None or isinstance(value, str):
        return value
    return " ".join(value)


def _rating(value) -> str | None:
    """The rating label; from a {label: probability} mapping (or its pyarrow list of pairs), the argmax."""
    if value is None or isinstance(value, str):
        return value
    scores = dict(value)
    return max(scores, key=scores.get)


def _float(value) -> float | None:
    return None if value is None else float(value)


def sakuga_row(row: dict, index: int) -> dict:
    """One of our metadata rows -> one release row (columns absent from ours are null)."""
    return {
        "identifier": row["identifier"],
        "hash_identifier": row["hash_identifier"],
        "url_link": row["url_link"],
        "scene_start_time": row["scene_start_time"],
        "scene_end_time": row["scene_end_time"],
        "frame_number": _float(row["frame_number"]),
        "key_frame_number": _float(row["key_frame_number"]),
        "anime_tags": _tags(row.get("anime_tags")),
        "user_tags": _tags(row.get("user_tags")),
        "text_description": row.get("text_description"),
        "aesthetic_score": _float(row.get("aesthetic_score")),
        "dynamic_score": _float(row["dynamic_score"]),
        "rating": _rating(row.get("rating")),
        "text_prob": _float(row.get("text_prob")),
        "width": row["width"],
        "height": row["height"],
        "file_ext": row["file_ext"],
        "file_size": file_size_text(row["file_size"]),
        "fps": _float(row["fps"]),
        **{axis: taxonomy_text(axis, row.get(axis)) for axis in TAXONOMY_LABELS},
        "__index_level_0__": index,
    }


def _pandas_metadata() -> bytes:
    """Schema metadata that makes pandas read `__index_level_0__` back as the index, as with the release file."""
    kinds = {pa.string(): ("unicode", "object"), pa.float64(): ("float64", "float64"), pa.int64(): ("int64", "int64")}
    columns = [
        {
            "name": None if field.name == "__index_level_0__" else field.name,
            "field_name": field.name,
            "pandas_type": kinds[field.type][0],
            "numpy_type": kinds[field.type][1],
            "metadata": None,
        }
        for field in SAKUGA_SCHEMA
    ]
    return json.dumps(
        {
            "index_columns": ["__index_level_0__"],
            "column_indexes": [],
            "columns": columns,
            "creator": {"library": "toonlab"},
            "pandas_version": "1.5.3",
        }
    ).encode()


def _batches(metadata: Path) -> Iterator[list[dict]]:
    """Our rows, one record batch at a time, reading only the columns the release has."""
    wanted = set(SAKUGA_SCHEMA.names) - {"__index_level_0__"}
    for path in sorted(Path(metadata).glob("*.parquet")):
        source = pq.ParquetFile(path)
        columns = [name for name in source.schema_arrow.names if name in wanted]
        for batch in source.iter_batches(batch_size=4096, columns=columns):
            yield batch.to_pylist()


def export_sakuga(out: Path | str, dest: Path | str) -> int:
    """Write `out`'s metadata as one Sakuga-42M-schema parquet file at `dest`; returns the number of rows."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    schema = SAKUGA_SCHEMA.with_metadata({b"pandas": _pandas_metadata()})
    tmp = dest.with_name(dest.name + ".tmp")
    count = 0
    with pq.ParquetWriter(tmp, schema, compression="snappy") as writer:
        for rows in _batches(Path(out) / "metadata"):
            table = pa.Table.from_pylist([sakuga_row(r, count + i) for i, r in enumerate(rows)], schema=schema)
            writer.write_table(table)
            count += len(rows)
    tmp.replace(dest)
    return count
