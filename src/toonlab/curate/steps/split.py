"""Video-disjoint train/val/test splits (`toonlab split OUT --val 0.05 --test 0.05 [--seed 0]`).

Sakuga-42M's splits are clip-level, so val and test clips come from videos also in train (notes/sakuga.md §4.1).
Here every shot of a group lands in one split, where a group is a video (`video_id`) or, when the dedup step has
run, every video joined to it through a near-duplicate cluster (so a reused opening or a re-upload cannot put the
same drawings in train and test). A group's split depends only on its key and the seed: sha256("<seed>:<key>") as
a number u in [0, 1) gives test if u < test, val if u < test + val, else train. Adding videos never moves
existing ones (unless a new near-duplicate joins two groups). Proportions hold over groups, so the clip fractions
are near, not exactly, the asked ones; `run_split` reports both.

`group_by` (`toonlab split OUT --group-by character`) groups by a label column instead of the video: every shot
with the same value (e.g. one character's animations, rendered as many videos) lands in one split, near-duplicate
clusters still joining groups. A shot whose value is null is grouped by its video. The key is `<column>=<value>`.

Output: sidecar `OUT/columns/split/<shard>.parquet` (see sidecar.py) with `split` and `split_group`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.sidecar import COLUMNS_DIR, metadata_files, read_shard, write_sidecar
from toonlab.curate.steps.dedup import NAME as DEDUP_NAME

NAME = "split"
SPLITS = ("train", "val", "test")
SIDECAR_SCHEMA = pa.schema([("identifier", pa.string()), ("split", pa.string()), ("split_group", pa.string())])


def unit_hash(key: str, seed: int) -> float:
    """A deterministic number in [0, 1) from the key and seed (first 8 bytes of sha256)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign(key: str, val: float, test: float, seed: int = 0) -> str:
    u = unit_hash(key, seed)
    return "test" if u < test else "val" if u < test + val else "train"


def group_keys(video_ids: Sequence[str], clusters: Sequence[str | None] | None = None) -> list[str]:
    """Per row, its group: the smallest key among the keys linked to its key by shared dup clusters.

    `video_ids` are the rows' base keys (video ids, or label keys with `group_by`)."""
    parent: dict[str, str] = {v: v for v in video_ids}

    def find(v: str) -> str:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    if clusters is not None:
        first_video: dict[str, str] = {}
        for video, cluster in zip(video_ids, clusters, strict=True):
            if cluster is None:
                continue
            other = first_video.setdefault(cluster, video)
            a, b = find(video), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [find(v) for v in video_ids]


def base_keys(shards: Sequence[tuple[str, pa.Table]], group_by: str | None) -> list[str]:
    """Per row, the key its group starts from: its video id, or `<column>=<value>` with `group_by`."""
    videos = [v for _, t in shards for v in t.column("video_id").to_pylist()]
    if group_by is None:
        return videos
    if any(group_by not in t.column_names for _, t in shards):
        raise ValueError(f"--group-by {group_by!r}: no such column in the metadata or its sidecars")
    values = [v for _, t in shards for v in t.column(group_by).to_pylist()]
    return [f"{group_by}={v}" if v is not None else video for v, video in zip(values, videos, strict=True)]


def run_split(
    out: Path,
    val: float = 0.05,
    test: float = 0.05,
    seed: int = 0,
    group_dups: bool = True,
    group_by: str | None = None,
) -> dict:
    """Assign and write the split sidecar for dataset `out`; returns counts per split (clips and groups)."""
    if val < 0 or test < 0 or val + test >= 1:
        raise ValueError(f"--val and --test must be >= 0 and sum below 1, got {val} and {test}")
    out = Path(out)
    use_dups = group_dups and (out / COLUMNS_DIR / DEDUP_NAME).is_dir()
    files = metadata_files(out)
    columns = ["identifier", "video_id", *(["dup_cluster"] if use_dups else []), *([group_by] if group_by else [])]
    shards = [(f.stem, read_shard(out, f, columns)) for f in files]
    videos = [v for _, t in shards for v in t.column("video_id").to_pylist()]
    clusters = [c for _, t in shards for c in t.column("dup_cluster").to_pylist()] if use_dups else None
    groups = group_keys(base_keys(shards, group_by), clusters)
    per_group = {g: assign(g, val, test, seed) for g in set(groups)}
    splits = [per_group[g] for g in groups]

    tables, offset = {}, 0
    for shard, table in shards:
        n = len(table)
        arrays = [table.column("identifier"), splits[offset : offset + n], groups[offset : offset + n]]
        tables[shard] = pa.Table.from_arrays(arrays, schema=SIDECAR_SCHEMA)
        offset += n
    params = {
        "val": val,
        "test": test,
        "seed": seed,
        "grouped_by_dup_cluster": use_dups,
        "group_by": group_by or "video_id",
        "hash": "sha256",
    }
    write_sidecar(out, NAME, tables, params)
    clips, group_counts = Counter(splits), Counter(per_group.values())
    return {
        "clips": {s: clips.get(s, 0) for s in SPLITS},
        "groups": {s: group_counts.get(s, 0) for s in SPLITS},
        "videos": len(set(videos)),
        "clip_fraction": {s: round(clips.get(s, 0) / max(1, len(splits)), 4) for s in SPLITS},
        "params": params,
    }


def read_splits(out: Path) -> pa.Table:
    """identifier, split, split_group over the whole dataset (for checks and loaders)."""
    return pa.concat_tables(pq.read_table(p) for p in sorted((Path(out) / COLUMNS_DIR / NAME).glob("*.parquet")))
