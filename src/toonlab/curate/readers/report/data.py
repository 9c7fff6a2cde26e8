"""Everything the report shows, gathered in one pass over the metadata (shard by shard, with the sidecar columns
such as `split` and `dup_keep` joined in) plus the run files.

Memory is one shard's metadata at a time, plus O(rows) for the few numeric columns that get histograms (float32
each) and O(vocabulary) for counts; tags, caption lengths and class counts are computed by pyarrow per record
batch. The gallery sample is the `gallery_size` shots with the smallest hash of (seed, key) among
the shards of `GALLERY_SHARDS` hash-chosen shards: deterministic, chosen without holding rows, and cheap to cut
thumbnails from; their full rows are read back afterwards from the files that hold them.
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.sidecar import read_shard
from toonlab.curate.taxonomy_table import AXES

# 0-1 (or open-ended) per-shot scores that get a histogram and a gallery filter when an annotator filled them
SCORE_COLUMNS = ("aesthetic_score", "quality_score", "text_prob", "motion_score")
TAXONOMY_COLUMNS = tuple(f"Taxonomy_{axis}" for axis in AXES)
CLASS_COLUMNS = ("timing", "rating", "caption_source", "split", "dup_keep", *TAXONOMY_COLUMNS)
_NUMERIC = ("key_frame_number", "frame_number", "dynamic_score", "fps", *SCORE_COLUMNS)
GALLERY_SHARDS = 24  # the gallery samples shots of at most this many shards: its thumbnails need their tar headers
_READ = ("key", "video_id", "anime_tags", "text_description", *_NUMERIC, *CLASS_COLUMNS)


@dataclass
class Summary:
    """What the plots, the headline numbers and the gallery need; `missing` lists columns that are all null."""

    out: Path
    rows: int = 0
    shards: int = 0
    videos: int = 0
    seconds_of_video: float = 0.0
    values: dict[str, np.ndarray] = field(default_factory=dict)  # numeric column -> non-null values
    classes: dict[str, Counter] = field(default_factory=dict)  # class column -> value counts
    tags: Counter = field(default_factory=Counter)
    caption_words: np.ndarray | None = None  # words per non-null caption
    missing: list[str] = field(default_factory=list)  # known columns with no value in any row
    gallery: list[dict] = field(default_factory=list)  # full rows of the sampled shots, in key order
    gallery_shards: int = 0  # shards the gallery sample was drawn from
    stats: dict = field(default_factory=dict)  # _stats.json
    error_groups: list[tuple[str, str, int]] = field(default_factory=list)  # (stage, reason, sources), biggest first
    errors: list[dict] = field(default_factory=list)  # the first error rows


def _priority(seed: int, key: str) -> int:
    return zlib.crc32(f"{seed}:{key}".encode())


def _tag_tokens(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Flat tag tokens from a space-separated string column or a list-of-strings column."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.utf8_split_whitespace(column)
    return pc.list_flatten(column)


def _count(counter: Counter, values: pa.Array) -> None:
    for item in pc.value_counts(pc.drop_null(values)).to_pylist():
        counter[item["values"]] += item["counts"]


def _scan(summary: Summary, files: list[Path], gallery_size: int, seed: int) -> dict[Path, set[str]]:
    """One pass over the metadata; returns, per file, the keys sampled for the gallery."""
    numeric: dict[str, list[np.ndarray]] = {name: [] for name in _NUMERIC}
    words: list[np.ndarray] = []
    videos: set[str] = set()
    present: set[str] = set()
    heap: list[tuple[int, str, Path]] = []  # max-heap on priority via negation: the gallery_size smallest
    sampled = set(sorted(files, key=lambda p: _priority(seed, p.name))[:GALLERY_SHARDS])
    summary.gallery_shards = len(sampled)
    for path in files:
        table = read_shard(summary.out, path, list(_READ))  # one shard's rows plus its sidecar columns
        columns = [name for name in _READ if name in table.column_names]
        for batch in table.to_batches(max_chunksize=8192):
            summary.rows += batch.num_rows
            videos.update(batch.column("video_id").unique().to_pylist())
            seconds = pc.divide(pc.cast(batch.column("frame_number"), pa.float64()), batch.column("fps"))
            summary.seconds_of_video += pc.sum(seconds).as_py() or 0.0
            for name in columns:
                column = batch.column(name)
                if column.null_count == len(column):
                    continue
                present.add(name)
                if name in numeric:
                    numeric[name].append(pc.drop_null(column).to_numpy(zero_copy_only=False).astype(np.float32))
                elif name in CLASS_COLUMNS:
                    _count(summary.classes.setdefault(name, Counter()), column)
                elif name == "anime_tags":
                    _count(summary.tags, _tag_tokens(column))
                elif name == "text_description":
                    lengths = pc.list_value_length(pc.utf8_split_whitespace(pc.drop_null(column)))
                    words.append(lengths.to_numpy(zero_copy_only=False))
            for key in batch.column("key").to_pylist() if path in sampled else ():
                entry = (-_priority(seed, key), key, path)
                if len(heap) < gallery_size:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)
    summary.videos = len(videos)
    summary.values = {name: np.concatenate(parts) for name, parts in numeric.items() if parts}
    summary.caption_words = np.concatenate(words) if words else None
    known = (*SCORE_COLUMNS, *TAXONOMY_COLUMNS, "anime_tags", "text_description", "rating")
    summary.missing = [name for name in known if name not in present]
    chosen: dict[Path, set[str]] = {}
    for _, key, path in heap:
        chosen.setdefault(path, set()).add(key)
    return chosen


def _gallery_rows(out: Path, chosen: dict[Path, set[str]]) -> list[dict]:
    rows = []
    for path, keys in chosen.items():
        table = read_shard(out, path)
        rows.extend(table.filter(pc.is_in(table.column("key"), pa.array(sorted(keys)))).to_pylist())
    return sorted(rows, key=lambda r: r["key"])


def _errors(out: Path, limit: int) -> tuple[list[tuple[str, str, int]], list[dict]]:
    path = out / "errors.parquet"
    if not path.exists():
        return [], []
    table = pq.read_table(path, columns=["source", "stage", "reason"])
    groups = table.group_by(["stage", "reason"]).aggregate([("source", "count")]).to_pylist()
    ranked = sorted(((g["stage"], g["reason"], g["source_count"]) for g in groups), key=lambda g: -g[2])
    return ranked, table.slice(0, limit).to_pylist()


def gather(out: Path | str, gallery_size: int = 240, seed: int = 0, error_rows: int = 200) -> Summary:
    """Read a curate output folder into a `Summary` (metadata streamed; see the module docstring)."""
    out = Path(out)
    files = sorted((out / "metadata").glob("*.parquet"))
    summary = Summary(out, shards=len(files))
    if (out / "_stats.json").exists():
        summary.stats = json.loads((out / "_stats.json").read_text())
    summary.error_groups, summary.errors = _errors(out, error_rows)
    summary.gallery = _gallery_rows(out, _scan(summary, files, gallery_size, seed)) if files else []
    return summary
