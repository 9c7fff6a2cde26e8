"""The dataset card `OUT/README.md`: a `datasets` YAML header, so `datasets.load_dataset("OUT")` works, plus the
counts, the layout and the origin of every source in words.

The card's config is the metadata, one row per shot (`datasets` infers one builder per folder, so the WebDataset
shards are loaded with `load_dataset("webdataset", ...)`, as the card says). When `toonlab split` has run, the
config has train/val/test splits: `splits/<name>/` holds
the rows of each split with every sidecar column, since `datasets` maps a split to files, not to a column.
curate writes the card at the end of a run; dedup, split and export rewrite it (and `splits/`) from what is on disk.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.sidecar import metadata_files, read_shard, sidecar_names
from toonlab.io import atomic_write, replace_dir, scratch_dir

CARD = "README.md"
SPLITS_DIR = "splits"
SPLITS = ("train", "val", "test")
_COUNTED = ("source", "key_frame_number", "record_version")
MAX_LISTED_SOURCES = 500  # the card lists at most this many sources; the metadata's `source` column has them all

_DTYPES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def feature_yaml(name: str, kind: pa.DataType) -> dict:
    """One arrow field as a `datasets` YAML feature (`{"name", "dtype" | "list" | "struct"}`)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = feature_yaml("", kind.value_type)
        return {"name": name, "list": inner.get("dtype") or inner.get("struct") or inner}
    if pa.types.is_struct(kind):
        return {"name": name, "struct": [feature_yaml(f.name, f.type) for f in kind]}
    return {"name": name, "dtype": _DTYPES.get(str(kind), str(kind))}


def yaml_text(value, indent: int = 0) -> str:
    """Block-style YAML for dicts, lists, strings, numbers and booleans (strings JSON-quoted: valid YAML)."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:\n{yaml_text(item, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return "\n".join(lines)
    if isinstance(value, list):
        lines = []
        for item in value:
            text = yaml_text(item, indent + 1) if isinstance(item, dict | list) else f"{pad}  {_scalar(item)}"
            lines.append(f"{pad}- {text.lstrip()}")
        return "\n".join(lines)
    return pad + _scalar(value)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict | list):
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(str(value))


def _origin(source: str) -> str:
    parts = urlsplit(source)
    if parts.scheme in ("http", "https") and parts.hostname:
        return f"downloaded from {parts.hostname}"
    return "local file"


@dataclass
class _Tally:
    """What the card says about the rows, gathered one shard at a time (memory: one shard, plus one count per
    source)."""

    rows: int = 0
    keyframes: int = 0
    sources: Counter = field(default_factory=Counter)
    versions: set = field(default_factory=set)
    splits: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))

    def add(self, table: pa.Table) -> None:
        self.rows += len(table)
        self.keyframes += sum(v or 0 for v in _values(table, "key_frame_number"))
        self.sources.update(_values(table, "source"))
        self.versions |= {v for v in _values(table, "record_version") if v is not None}


def _tally(out: Path, with_splits: bool) -> tuple[_Tally, pa.Schema]:
    """One pass over the shards; with `with_splits`, each split's rows (metadata + sidecars) also go to
    `splits/<name>/<shard>.parquet`, the folder replaced at once (built in a fresh, uniquely named scratch folder:
    nothing that was there before is removed). Empty files are not written (`datasets` reads no empty file and no
    split without files)."""
    tally, tmp = _Tally(), scratch_dir(out / SPLITS_DIR, "tmp")
    try:
        schema = _fill(out, tally, tmp, with_splits)
        if not any(tmp.iterdir()):
            tmp.rmdir()  # no split files (split not run): any old splits/ folder goes
        replace_dir(out / SPLITS_DIR, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only this call's scratch folder (gone already once swapped in)
    tally.splits = {name: count for name, count in tally.splits.items() if count}
    return tally, schema


def _fill(out: Path, tally: _Tally, tmp: Path, with_splits: bool) -> pa.Schema:
    files = metadata_files(out)
    schema = read_shard(out, files[0]).schema if with_splits else pq.read_schema(files[0])
    for meta_file in files:
        if not with_splits:
            names = pq.read_schema(meta_file).names
            tally.add(pq.read_table(meta_file, columns=[c for c in _COUNTED if c in names]))
            continue
        table = read_shard(out, meta_file)
        tally.add(table)
        for name in SPLITS:
            part = table.filter(pc.equal(table.column("split"), name))
            if len(part):
                (tmp / name).mkdir(parents=True, exist_ok=True)
                pq.write_table(part, tmp / name / meta_file.name, compression="zstd")
                tally.splits[name] += len(part)
    return schema


def card_header(schema: pa.Schema, rows: int, splits: dict[str, int] | None) -> dict:
    """The YAML header: licence, the config's data files per split, its features and split sizes."""
    if splits:
        files = [{"split": name, "path": f"{SPLITS_DIR}/{name}/*.parquet"} for name in splits]
        sizes = [{"name": name, "num_examples": count} for name, count in splits.items()]
    else:
        files = [{"split": "train", "path": "metadata/*.parquet"}]
        sizes = [{"name": "train", "num_examples": rows}]
    features = [feature_yaml(f.name, f.type) for f in schema]
    return {
        "license": "unknown",
        "tags": ["video", "animation", "keyframes", "toonlab"],
        "configs": [{"config_name": "default", "data_files": files}],
        "dataset_info": {"config_name": "default", "features": features, "splits": sizes},
    }


def write_card(out: Path | str) -> Path | None:
    """(Re)write `OUT/README.md` (and `OUT/splits/` when the split sidecar exists) from the dataset on disk;
    None (and no card) while the dataset has no shot yet."""
    out = Path(out)
    if not any((out / "metadata").glob("*.parquet")):
        return None
    tally, schema = _tally(out, "split" in sidecar_names(out))
    header = card_header(schema, tally.rows, tally.splits or None)
    text = f"---\n{yaml_text(header)}\n---\n\n{_body(out, tally)}"
    return atomic_write(out / CARD, text)


def _values(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else []


def _body(out: Path, tally: _Tally) -> str:
    shots, splits = tally.sources, tally.splits
    sources = sorted(shots)
    versions = "/".join(str(v) for v in sorted(tally.versions))
    lines = [
        f"# {out.name}",
        "",
        f"Cartoon shots curated by `toonlab curate` (record version {versions or '?'}): {tally.rows:,} shots with "
        f"{tally.keyframes:,} unique drawings (keyframes) from "
        f"{len(sources):,} source videos.",
        "",
        "- `metadata/*.parquet`: one row per shot (Sakuga-42M column names plus ours): `load_dataset` of this folder.",
        "- `shards/*.tar`: WebDataset, one sample per keyframe (`<shot>_<frame>.json` and the image).",
        "- `columns/<step>/`: columns of dataset-wide steps, joined by `identifier`: "
        + (", ".join(sidecar_names(out)) or "none yet")
        + ".",
    ]
    if splits:
        unsplit = tally.rows - sum(splits.values())
        counts = ", ".join(f"{name} {count:,}" for name, count in splits.items())
        late = f"; {unsplit:,} shots added after `toonlab split` ran are in no split until it runs again"
        lines.append(
            f"- `splits/<name>/`: each split's rows with every step's columns ({counts}{late if unsplit else ''})."
        )
    lines += [
        "",
        "```python",
        "from datasets import load_dataset",
        f'shots = load_dataset("{out}")   # one row per shot' + (f", splits {'/'.join(splits)}" if splits else ""),
        f'frames = load_dataset("webdataset", data_files={{"train": "{out}/shards/*.tar"}})   # one keyframe per row',
        "```",
        "",
        "## Sources",
        "",
        "Licence: not recorded by toonlab (the header says `unknown`); each source keeps the terms of its origin.",
        "",
        "| source | origin | shots |",
        "|---|---|---|",
    ]
    for source in sources[:MAX_LISTED_SOURCES]:
        shown = source.replace("|", "%7C").replace("\n", " ")
        lines.append(f"| {shown} | {_origin(source)} | {shots[source]} |")
    if len(sources) > MAX_LISTED_SOURCES:
        lines.append(f"| ... and {len(sources) - MAX_LISTED_SOURCES:,} more (metadata column `source`) | | |")
    return "\n".join(lines) + "\n"
