"""Key -> value columns stored as `list<struct<key, value>>`: a type pyarrow, duckdb, `datasets` and pandas all read.

Annotators return Python dicts (`{"1girl": 0.93}`); the writer stores them as lists of `{"key", "value"}` structs.
Record version 1 stored these columns as arrow maps, which `datasets` has no feature type for; `upgrade_maps`
turns such a table into the current types, so every reader sees one layout whatever wrote the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa


def pairs_type(value: pa.DataType) -> pa.DataType:
    """The column type of a key -> value mapping with string keys."""
    return pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", value)]))


def is_pairs(kind: pa.DataType) -> bool:
    return (
        pa.types.is_list(kind)
        and pa.types.is_struct(kind.value_type)
        and [f.name for f in kind.value_type] == ["key", "value"]
    )


def to_pairs(mapping: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """{"a": 1} -> [{"key": "a", "value": 1}] (None stays None), the value a pairs column stores."""
    if mapping is None:
        return None
    return [{"key": str(k), "value": v} for k, v in mapping.items()]


def as_dict(value: Mapping | Iterable | None) -> dict[str, Any] | None:
    """A pairs value as read back (list of {"key", "value"}), a v1 map as pyarrow gives it (list of (key, value))
    or a dict -> dict. None stays None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    items = ((p["key"], p["value"]) if isinstance(p, Mapping) else p for p in value)
    return dict(items)


def upgrade_maps(table: pa.Table) -> pa.Table:
    """Record version 1 -> 2: every `map<string, T>` column becomes `list<struct<key: string, value: T>>`."""
    for i, field in enumerate(table.schema):
        if pa.types.is_map(field.type):
            kind = pairs_type(field.type.item_type)
            table = table.set_column(i, pa.field(field.name, kind), table.column(i).cast(kind))
    return table
