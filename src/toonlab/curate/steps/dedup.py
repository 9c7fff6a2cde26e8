"""Near-duplicate shots across a whole dataset (re-uploads, re-encodes, recaps, openings reused across episodes).

A global step after the shards exist (`toonlab dedup OUT`):
1. Per shot, up to `frames` evenly spaced keyframes are read from its shard and hashed with a 64-bit DCT
   perceptual hash (pHash as in `imagehash.phash`: 32x32 grey, 2-D DCT, the 8x8 lowest frequencies against their
   median), computed with OpenCV so no further package is needed. Near-flat frames (grey std < 2) are skipped: all
   blank frames share one hash and would chain unrelated shots together.
2. Candidates, without comparing all pairs: identical hashes are merged, then bit-sampling LSH (16 tables, each
   keyed by 24 fixed random bit positions) proposes pairs of distinct hashes, kept when within `max_distance`.
   A pair of frames 2 bits apart is found with probability 0.9996, 4 bits 0.92, 6 bits 0.57, 8 bits 0.24
   (1 - (1 - p)^16 with p = C(64 - d, 24) / C(64, 24)); a shot pair has up to 16 frame pairs, so a
   re-encode (frames 0-4 bits apart) is found almost surely. Buckets (or one frame hash shared by) more than
   `max_bucket` shots are skipped and counted, not silently truncated.
3. Two candidate shots are near-duplicates when at least half of the smaller shot's hashes have a partner within
   `max_distance` bits in the other. Near-duplicates are joined with union-find into clusters. This is single
   linkage: a shot that shares a drawing with two others (a held pose that two sprite animations both pass through,
   a still) joins them into one cluster, which is what grouping for splits needs and is coarser than "same clip".

Output: sidecar `OUT/columns/dup_cluster/<shard>.parquet` (see sidecar.py) with `dup_cluster` (the smallest
identifier in the cluster; **null for a shot with no near-duplicate**), `dup_size` (shots in the cluster, 1 for
singletons), `dup_keep` (true for one representative per cluster, the one with most drawings, and for every
singleton: `--filter dup_keep` de-duplicates an export) and `dup_phash` (the hashes, reused by a rerun).
"""

from __future__ import annotations

import json
import tarfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.sidecar import COLUMNS_DIR, metadata_files, write_sidecar
from toonlab.extras import require

NAME = "dup_cluster"
TABLES, KEY_BITS = 16, 24  # bit-sampling LSH: 16 tables keyed by 24 of the 64 bits each
SIDECAR_SCHEMA = pa.schema(
    [
        ("identifier", pa.string()),
        ("dup_cluster", pa.string()),
        ("dup_size", pa.int32()),
        ("dup_keep", pa.bool_()),
        ("dup_phash", pa.list_(pa.uint64())),
    ]
)


def phash(image: np.ndarray, min_std: float = 2.0) -> int | None:
    """64-bit DCT perceptual hash of a grey or RGB uint8 image; None for a near-flat frame."""
    cv2 = require("cv2")
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    if small.std() < min_std:
        return None
    low = cv2.dct(small)[:8, :8]  # (8, 8) lowest frequencies
    bits = (low > np.median(low)).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _evenly(indices: Sequence[int], k: int) -> list[int]:
    if len(indices) <= k:
        return list(indices)
    return [indices[int(round(x))] for x in np.linspace(0, len(indices) - 1, k)]


def shard_hashes(tar_path: Path, rows: list[dict], frames: int) -> list[list[int]]:
    """Per row (key, keyframe_indices): the pHashes of up to `frames` evenly spaced keyframe images in the shard."""
    cv2 = require("cv2")
    wanted: dict[str, int] = {}  # member name without extension -> row position
    for position, row in enumerate(rows):
        for index in _evenly(row["keyframe_indices"] or [], frames):
            wanted[f"{row['key']}.{index:06d}"] = position
    hashes: list[list[int]] = [[] for _ in rows]
    with tarfile.open(tar_path) as tar:
        for member in tar:
            stem = member.name.rsplit(".", 1)[0]
            if stem in wanted and member.name.rsplit(".", 1)[-1] in ("jpg", "jpeg", "png", "webp"):
                buf = np.frombuffer(tar.extractfile(member).read(), np.uint8)
                image = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
                value = phash(image) if image is not None else None
                if value is not None:
                    hashes[wanted[stem]].append(value)
    return hashes


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:  # path compression
            self.parent[a], a = root, self.parent[a]
        return int(root)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _sampled_positions(tables: int = TABLES, bits: int = KEY_BITS, seed: int = 0) -> np.ndarray:
    """(tables, bits) distinct bit positions per LSH table, fixed by the seed so runs agree."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(64, bits, replace=False) for _ in range(tables)])


def _equal_key_pairs(keys: np.ndarray, max_bucket: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Index pairs (i, j) with keys[i] == keys[j], from runs of the sorted keys no longer than `max_bucket`."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    lengths = np.diff(np.r_[starts, len(ordered)])
    allowed = np.repeat(lengths <= max_bucket, lengths)
    left, right = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for offset in range(1, max_bucket):  # pairs `offset` apart in the sorted order; stops after the longest run
        same = (ordered[:-offset] == ordered[offset:]) & allowed[:-offset]
        if not same.any():
            break
        index = np.flatnonzero(same)
        left.append(order[index])
        right.append(order[index + offset])
    return np.concatenate(left), np.concatenate(right), int((lengths > max_bucket).sum())


def candidate_pairs(
    values: np.ndarray, owners: np.ndarray, max_distance: int, max_bucket: int
) -> tuple[set[tuple[int, int]], dict]:
    """Shot pairs that share at least one frame hash within `max_distance` bits, found without comparing all pairs.

    Identical hashes are merged first (a reused frame is one entry however many shots hold it); bit-sampling LSH
    over the distinct hashes then proposes pairs, which are kept when their true distance is small enough."""
    unique, inverse = np.unique(values, return_inverse=True)
    keys = np.zeros(len(unique), np.uint64)
    left, right, skipped = [], [], 0
    for positions in _sampled_positions():
        keys[:] = 0
        for j, position in enumerate(positions):  # key = the hash's bits at this table's positions
            keys |= ((unique >> np.uint64(position)) & np.uint64(1)) << np.uint64(j)
        i, k, big = _equal_key_pairs(keys, max_bucket)
        left.append(i)
        right.append(k)
        skipped += big
    u, v = np.concatenate(left), np.concatenate(right)
    close = np.bitwise_count(unique[u] ^ unique[v]) <= max_distance
    u, v = u[close], v[close]
    order = np.argsort(inverse, kind="stable")  # hash positions grouped by distinct value
    bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(unique)))]
    shots_of = [np.unique(owners[order[bounds[x] : bounds[x + 1]]]) for x in range(len(unique))]
    pairs: set[tuple[int, int]] = set()
    for shots in shots_of:  # shots that share an identical frame hash
        if len(shots) > max_bucket:
            skipped += 1
        elif len(shots) > 1:
            pairs.update((int(a), int(b)) for n, a in enumerate(shots[:-1]) for b in shots[n + 1 :])
    for x, y in set(zip(u.tolist(), v.tolist(), strict=True)):  # shots holding two close distinct hashes
        pairs.update((min(a, b), max(a, b)) for a in shots_of[x].tolist() for b in shots_of[y].tolist() if a != b)
    return pairs, {"candidate_hash_pairs": int(close.sum()), "skipped_buckets": skipped}


def is_near_duplicate(a: np.ndarray, b: np.ndarray, max_distance: int) -> bool:
    """At least half of the smaller hash set has a partner within `max_distance` bits in the other."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    distances = np.bitwise_count(small[:, None] ^ large[None, :])  # (len(small), len(large))
    matched = int((distances.min(axis=1) <= max_distance).sum())
    return matched >= max(1, -(-len(small) // 2))


def cluster(hashes: list[np.ndarray], max_distance: int = 8, max_bucket: int = 256) -> tuple[np.ndarray, dict]:
    """Cluster root per shot (its own index for a singleton) and counts, from per-shot uint64 hash arrays."""
    owners = np.concatenate([np.full(len(h), i, np.int64) for i, h in enumerate(hashes)] or [np.zeros(0, np.int64)])
    values = np.concatenate([*hashes, np.zeros(0, np.uint64)]).astype(np.uint64)
    pairs, counts = candidate_pairs(values, owners, max_distance, max_bucket)
    uf = _UnionFind(len(hashes))
    matched = 0
    for a, b in pairs:
        if is_near_duplicate(hashes[a], hashes[b], max_distance):
            uf.union(a, b)
            matched += 1
    roots = np.array([uf.find(i) for i in range(len(hashes))], np.int64)
    return roots, {"candidate_shot_pairs": len(pairs), "matched_pairs": matched, **counts}


def _cached_hashes(out: Path, meta_file: Path, identifiers: list[str], frames: int) -> list[list[int]] | None:
    """Hashes from the previous run's sidecar when it covered exactly these rows with the same `frames`."""
    path = Path(out) / COLUMNS_DIR / NAME / meta_file.name
    params = Path(out) / COLUMNS_DIR / NAME / "_params.json"
    if not path.exists() or not params.exists() or json.loads(params.read_text()).get("frames") != frames:
        return None
    old = pq.read_table(path, columns=["identifier", "dup_phash"])
    if old.column("identifier").to_pylist() != identifiers:
        return None
    return [list(h or []) for h in old.column("dup_phash").to_pylist()]


def run_dedup(out: Path, frames: int = 4, max_distance: int = 8, max_bucket: int = 256) -> dict:
    """Hash, cluster and write the dup_cluster sidecar for dataset `out`; returns counts and timings."""
    if not 0 <= max_distance < 32:
        raise ValueError(f"--max-distance must be in 0..31 bits, got {max_distance}")
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    out = Path(out)
    start = time.perf_counter()
    shards: list[tuple[str, list[str], list[int]]] = []  # (shard, identifiers, drawings)
    hashes: list[list[int]] = []
    reused = 0
    for meta_file in metadata_files(out):
        rows = pq.read_table(meta_file, columns=["identifier", "key", "keyframe_indices", "key_frame_number"])
        rows = rows.to_pylist()
        ids = [r["identifier"] for r in rows]
        cached = _cached_hashes(out, meta_file, ids, frames)
        if cached is None:
            cached = shard_hashes(out / "shards" / f"{meta_file.stem}.tar", rows, frames)
        else:
            reused += len(ids)
        shards.append((meta_file.stem, ids, [r["key_frame_number"] or 0 for r in rows]))
        hashes.extend(cached)
    hashed_seconds = time.perf_counter() - start
    arrays = [np.asarray(h, np.uint64) for h in hashes]
    roots, counts = cluster(arrays, max_distance, max_bucket)

    identifiers = [i for _, ids, _ in shards for i in ids]
    drawings = [d for _, _, ds in shards for d in ds]
    members: dict[int, list[int]] = defaultdict(list)
    for index, root in enumerate(roots):
        members[int(root)].append(index)
    cluster_id, size, keep = [None] * len(roots), [1] * len(roots), [True] * len(roots)
    for group in members.values():
        if len(group) < 2:
            continue
        name = min(identifiers[i] for i in group)
        best = min(group, key=lambda i: (-drawings[i], identifiers[i]))
        for i in group:
            cluster_id[i], size[i], keep[i] = name, len(group), i == best

    tables, offset = {}, 0
    for shard, ids, _ in shards:
        span = slice(offset, offset + len(ids))
        columns = [ids, cluster_id[span], size[span], keep[span], hashes[span]]
        tables[shard] = pa.Table.from_arrays(columns, schema=SIDECAR_SCHEMA)
        offset += len(ids)
    params = {"frames": frames, "max_distance": max_distance, "max_bucket": max_bucket, "hash": "dct-phash-64"}
    write_sidecar(out, NAME, tables, params)
    clusters = sum(1 for g in members.values() if len(g) > 1)
    return {
        "shots": len(identifiers),
        "shots_without_hash": sum(1 for h in hashes if not h),
        "hashes_reused": reused,
        "clusters": clusters,
        "shots_in_clusters": sum(len(g) for g in members.values() if len(g) > 1),
        "shots_dropped_by_dup_keep": sum(1 for k in keep if not k),
        **counts,
        "hash_seconds": round(hashed_seconds, 3),
        "seconds": round(time.perf_counter() - start, 3),
        "params": params,
    }
