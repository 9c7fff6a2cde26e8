"""Dataset output: per-shot parquet rows (Sakuga column names + ours), WebDataset shards, errors, stats.

Atomicity: a shard's tar and parquet are written under temporary names and renamed, then one ledger line
records the shard and the sources it holds. The ledger is the truth: at start-up, shard files that no ledger
line names (a run killed between rename and ledger) are deleted, and sources the ledger names are skipped.
So a run killed at any moment and rerun loses nothing and writes nothing twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.records import RECORD_VERSION, Blob, SourceError, SourceResult
from toonlab.curate.stages.analyze.keyframes import dynamic_score, timing_label
from toonlab.curate.stages.annotate import annotation_fields

LEDGER = "_ledger.jsonl"

BASE_FIELDS = [
    # Sakuga-42M column names, honest types
    ("identifier", pa.string()),
    ("hash_identifier", pa.string()),
    ("url_link", pa.string()),
    ("scene_start_time", pa.string()),
    ("scene_end_time", pa.string()),
    ("frame_number", pa.int64()),
    ("key_frame_number", pa.int64()),
    ("dynamic_score", pa.float64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("fps", pa.float64()),
    ("file_ext", pa.string()),
    ("file_size", pa.int64()),
    # ours
    ("source", pa.string()),
    ("video_id", pa.string()),
    ("shot_index", pa.int32()),
    ("start_frame", pa.int64()),
    ("end_frame", pa.int64()),
    ("keyframe_indices", pa.list_(pa.int64())),
    ("timing", pa.string()),
    ("fps_rational", pa.string()),
    ("codec", pa.string()),
    ("source_sha256", pa.string()),
    ("shard", pa.string()),
    ("key", pa.string()),
    ("record_version", pa.int32()),
]


def dataset_schema() -> pa.Schema:
    """The metadata schema: the base columns plus every annotator's columns, which are always present (null when
    the annotator did not run), so every parquet file of a dataset has the same schema."""
    return pa.schema([pa.field(name, kind) for name, kind in BASE_FIELDS] + annotation_fields())


ERROR_SCHEMA = pa.schema(
    [("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
)


def timecode(seconds: float) -> str:
    """`HH:MM:SS.mmm`, as in the Sakuga-42M release."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{ms:03d}"


def url_for(source: str) -> str:
    if "://" in source:
        return source
    return Path(source).resolve().as_uri()


def shot_rows(result: SourceResult, shard: str) -> list[dict]:
    """One row per shot of a source, with the WebDataset key of its sample."""
    probe = result.probe
    fps = probe.fps
    url = result.ref.url or url_for(result.ref.source)
    rows = []
    for position, shot in enumerate(result.shots):
        number = shot.number or position + 1  # released scene number, or the shot's place in the source
        identifier = f"{result.video_id}:{number}"
        rows.append(
            {
                "identifier": identifier,
                "hash_identifier": hashlib.sha256(identifier.encode()).hexdigest(),
                "url_link": url,
                "scene_start_time": timecode(float(shot.start / fps)),
                "scene_end_time": timecode(float(shot.end / fps)),
                "frame_number": shot.frame_number,
                "key_frame_number": len(shot.keyframes),
                "dynamic_score": dynamic_score(len(shot.keyframes), shot.frame_number),
                "width": probe.width,
                "height": probe.height,
                "fps": float(fps),
                "file_ext": result.ref.path.suffix.lstrip(".").lower(),
                "file_size": probe.file_size,
                "source": result.ref.source,
                "video_id": result.video_id,
                "shot_index": number,
                "start_frame": shot.start,
                "end_frame": shot.end,
                "keyframe_indices": list(shot.keyframes),
                "timing": timing_label(shot.keyframes, shot.end),
                "fps_rational": f"{fps.numerator}/{fps.denominator}",
                "codec": probe.codec,
                "video_frames": probe.frame_count,
                "video_duration": probe.duration,
                "source_sha256": probe.sha256,
                "shard": shard,
                "key": f"{result.video_id}_{number:04d}",
                "record_version": RECORD_VERSION,
                **(result.annotations[position] if result.annotations else {}),
            }
        )
    return rows


def _read(spool, blob: Blob) -> bytes:
    spool.seek(blob.offset)
    return spool.read(blob.size)


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class Ledger:
    """Append-only record of committed shards and failed sources (one JSON object per line)."""

    path: Path
    done: set[str] = field(default_factory=set)  # sources committed or failed
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 -> source, for committed sources
    shards: set[str] = field(default_factory=set)
    errors: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path) -> Ledger:
        ledger = cls(path)
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a kill: its shard is an orphan and gets removed
                ledger._apply(entry)
        return ledger

    def _apply(self, entry: dict) -> None:
        if entry.get("kind") == "shard":
            self.shards.add(entry["shard"])
            for src in entry["sources"]:
                self.done.add(src["source"])
                self.hashes[src["sha256"]] = src["source"]
        elif entry.get("kind") == "error":
            self.done.add(entry["source"])
            self.errors.append({k: entry.get(k, "") for k in ("source", "stage", "reason", "detail")})

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._apply(entry)


class DatasetWriter:
    """Single writer of an output directory: size-bounded shards committed atomically, plus the ledger."""

    def __init__(self, out: Path, max_bytes: int, max_samples: int) -> None:
        self.out = Path(out)
        self.meta_dir = self.out / "metadata"
        self.shard_dir = self.out / "shards"
        self.spool_dir = self.out / "_spool"  # workers' per-source files, consumed by add()
        for d in (self.meta_dir, self.shard_dir, self.spool_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger.open(self.out / LEDGER)
        self.max_bytes = max_bytes
        self.max_samples = max_samples
        self._remove_orphans()
        self._next = 1 + max((int(s) for s in self.ledger.shards), default=-1)
        self._tar: tarfile.TarFile | None = None
        self._rows: list[dict] = []
        self._sources: list[dict] = []
        self._bytes = 0

    def _remove_orphans(self) -> None:
        for path in self.spool_dir.iterdir():  # left by a killed run
            path.unlink()
        for folder in (self.meta_dir, self.shard_dir):
            for path in folder.iterdir():
                if path.name.split(".")[0] not in self.ledger.shards or path.name.endswith(".tmp"):
                    path.unlink()

    @property
    def _shard(self) -> str:
        return f"{self._next:05d}"

    def add(self, result: SourceResult) -> list[dict]:
        """Queue one source's samples into the open shard; returns its rows."""
        if self._tar is not None and (self._bytes >= self.max_bytes or len(self._rows) >= self.max_samples):
            self.commit()
        if self._tar is None:
            self._tar = tarfile.open(self.shard_dir / f"{self._shard}.tar.tmp", "w", format=tarfile.USTAR_FORMAT)
        rows = shot_rows(result, self._shard)
        with open(result.spool, "rb") as spool:
            for position, row in enumerate(rows):
                self._member(row["key"], "json", json.dumps(row, sort_keys=True).encode())
                if row.get("text_description") is not None:  # the caption, as WebDataset's conventional txt
                    self._member(row["key"], "txt", row["text_description"].encode())
                for index in row["keyframe_indices"]:
                    if index in result.images:  # absent when the run keeps no images
                        blob = result.images[index]
                        self._member(row["key"], f"{index:06d}.{blob.ext}", _read(spool, blob))
                if position in result.clips:
                    blob = result.clips[position]
                    self._member(row["key"], blob.ext, _read(spool, blob))
        result.spool.unlink()
        self._rows.extend(rows)
        self._sources.append(
            {
                "source": result.ref.source,
                "sha256": result.probe.sha256,
                "video_id": result.video_id,
                "shots": len(rows),
            }
        )
        return rows

    def _member(self, key: str, ext: str, data: bytes) -> None:
        info = tarfile.TarInfo(f"{key}.{ext}")
        info.size = len(data)
        info.mtime = 0
        self._tar.addfile(info, io.BytesIO(data))
        self._bytes += len(data) + 1024

    def fail(self, error: SourceError) -> None:
        self.ledger.append({"kind": "error", "v": RECORD_VERSION, "time": time.time(), **error.__dict__})

    def commit(self) -> None:
        """Make the open shard durable and visible: fsync, rename tar then parquet, then the ledger line."""
        if self._tar is None:
            return
        shard = self._shard
        self._tar.close()
        tar_tmp = self.shard_dir / f"{shard}.tar.tmp"
        with open(tar_tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        table = pa.Table.from_pylist(self._rows, schema=dataset_schema())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        meta_tmp = self.meta_dir / f"{shard}.parquet.tmp"
        _fsync_write(meta_tmp, sink.getvalue().to_pybytes())
        os.replace(tar_tmp, self.shard_dir / f"{shard}.tar")
        os.replace(meta_tmp, self.meta_dir / f"{shard}.parquet")
        self.ledger.append({"kind": "shard", "v": RECORD_VERSION, "shard": shard, "sources": self._sources})
        self._tar, self._rows, self._sources, self._bytes = None, [], [], 0
        self._next += 1

    def close(self) -> None:
        self.commit()
        self.write_errors()

    def write_errors(self) -> None:
        table = pa.Table.from_pylist(self.ledger.errors, schema=ERROR_SCHEMA)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        tmp = self.out / "errors.parquet.tmp"
        _fsync_write(tmp, sink.getvalue().to_pybytes())
        os.replace(tmp, self.out / "errors.parquet")


def write_stats(out: Path, stats: dict) -> None:
    tmp = Path(out) / "_stats.json.tmp"
    tmp.write_text(json.dumps(stats, indent=2, sort_keys=True))
    os.replace(tmp, Path(out) / "_stats.json")
