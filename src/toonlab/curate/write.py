"""Dataset output: per-shot parquet rows (Sakuga column names + ours), WebDataset shards, errors, stats.

Atomicity: the shards of a commit group (usually one; more when one source outgrows a shard) are written under
temporary names and renamed, tars then parquets, then one ledger line records them and the sources they hold.
The ledger is the truth: at start-up, sources it names are skipped and half-made shard files that no ledger
line names (a run killed before every rename) are deleted; a complete group whose line is missing (killed
between renames and ledger line, or a line torn by power loss) is recorded again from its own files. So a run
killed at any moment and rerun loses nothing and writes nothing twice. One run writes a directory at a time (an
exclusive lock on `_lock`).

Shard layout (one sample per keyframe, fixed member names): see shards.py.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tarfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.parquet as pq

from toonlab.curate.pairs import is_pairs, to_pairs
from toonlab.curate.records import RECORD_VERSION, Blob, SourceError, SourceResult
from toonlab.curate.shards import CLIPS_DIR, keyframe_json, sample_key, sample_keys
from toonlab.curate.stages.analyze.keyframes import dynamic_score, timing_label
from toonlab.curate.stages.annotate import annotation_fields
from toonlab.curate.tarwrite import TarAppender
from toonlab.io import atomic_path, atomic_write

LEDGER = "_ledger.jsonl"
COMMIT_KEY = b"toonlab.commit"  # parquet metadata: the shards committed with this one (JSON list)
LOCK = "_lock"  # held by the run writing the directory; holds its PID

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


def _pairs_columns() -> frozenset[str]:
    return frozenset(f.name for f in dataset_schema() if is_pairs(f.type))


def _stored(annotations: dict[str, object], pairs: frozenset[str]) -> dict[str, object]:
    """Annotator values as the metadata stores them: mappings become lists of {"key", "value"}."""
    return {k: to_pairs(v) if k in pairs else v for k, v in annotations.items()}


def shot_rows(result: SourceResult, shard: str) -> list[dict]:
    """One row per shot of a source; `key` names the shot's samples in the shard (see shards.py)."""
    pairs = _pairs_columns()
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
                "scene_start_time": timecode(float(shot.start / fps) if shot.start_time is None else shot.start_time),
                "scene_end_time": timecode(float(shot.end / fps) if shot.end_time is None else shot.end_time),
                "frame_number": shot.frame_number,
                "key_frame_number": len(shot.keyframes),
                "dynamic_score": dynamic_score(len(shot.keyframes), shot.frame_number),
                "width": probe.display_size[0],
                "height": probe.display_size[1],
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
                **(_stored(result.annotations[position], pairs) if result.annotations else {}),
            }
        )
    return rows


def _read(spool, blob: Blob) -> bytes:
    spool.seek(blob.offset)
    return spool.read(blob.size)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class Ledger:
    """Append-only record of committed shards and failed sources (one JSON object per line).

    A line cut short (a kill, power loss or full disk mid-write) is counted in `torn`; a whole record glued onto
    such a line by an older writer is still read. The next append first ends the torn line, so a new record never
    joins it."""

    path: Path
    done: set[str] = field(default_factory=set)  # sources committed or failed
    hashes: dict[str, str] = field(default_factory=dict)  # sha256 -> source, for committed sources
    shards: set[str] = field(default_factory=set)
    errors: list[dict] = field(default_factory=list)
    versions: set[int] = field(default_factory=set)  # record versions of the committed shards
    torn: int = 0  # unreadable lines (or line ends) found at open
    _open_line: bool = False  # the file does not end with a newline

    @classmethod
    def open(cls, path: Path) -> Ledger:
        ledger = cls(path)
        if path.exists():
            data = path.read_bytes()
            ledger._open_line = bool(data) and not data.endswith(b"\n")
            for line in data.decode("utf-8", errors="replace").splitlines():
                try:
                    entries = [json.loads(line)]
                except json.JSONDecodeError:
                    ledger.torn += 1
                    entries = _glued(line)
                for entry in entries:
                    try:
                        ledger._apply(entry)
                    except (AttributeError, KeyError, TypeError):  # valid JSON, not a ledger record
                        ledger.torn += 1
        return ledger

    def _apply(self, entry: dict) -> None:
        if entry.get("kind") == "shard":
            self.shards.update(entry.get("shards") or [entry["shard"]])  # a commit group, or one shard
            self.versions.add(entry.get("v", 1))
            for src in entry["sources"]:
                self.done.add(src["source"])
                self.hashes[src["sha256"]] = src["source"]
        elif entry.get("kind") == "error":
            self.done.add(entry["source"])
            self.errors.append({k: entry.get(k, "") for k in ("source", "stage", "reason", "detail")})

    def append(self, entry: dict) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        if self._open_line:  # end the torn line first: the new record gets a line of its own
            line = "\n" + line
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._open_line = False
        self._apply(entry)


def _glued(line: str) -> list:
    """The whole records in an unreadable line: a torn record followed by a whole one glued onto it (as an older
    writer could leave) yields the whole one."""
    decoder = json.JSONDecoder()
    found = []
    at = line.find('{"kind"', 1)
    while at != -1:
        try:
            entry, end = decoder.raw_decode(line, at)
        except json.JSONDecodeError:
            end = at + 1
        else:
            found.append(entry)
        at = line.find('{"kind"', end)
    return found


class OutputInUse(RuntimeError):
    """Another process holds the output directory's lock."""


DEAD_HOLDER_WAIT = 10.0  # seconds a killed run's last workers may keep its lock while they die


def _alive(pid: str) -> bool:
    """Whether the process a lock file names still exists (an unreadable name counts as alive)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, OverflowError, PermissionError):
        return True
    except ProcessLookupError:
        return False
    return True


def lock_output(out: Path, dead_holder_wait: float = DEAD_HOLDER_WAIT) -> IO[str]:
    """Take the exclusive lock on `out` (an flock on `out/_lock`, released when the returned file is closed or the
    process dies, so a killed run never leaves it stale) and write this process's PID into it. A second run fails
    at once with the holder's PID. When the named holder is dead, the lock is still held only by its worker
    processes (forked with the lock's file descriptor) in the moment before they die with it: that is waited
    for, up to `dead_holder_wait` seconds."""
    handle = open(out / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the run
    deadline = time.monotonic() + dead_holder_wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            if _alive(holder) or time.monotonic() > deadline:
                handle.close()
                raise OutputInUse(
                    f"{out} is in use by another toonlab curate run (PID {holder}); wait for it to end"
                ) from None
            time.sleep(0.05)
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _committed_sources(meta: Path, tar: Path, shard: str) -> tuple[list[str], list[dict]] | None:
    """A shard's commit group (the shards one ledger line names) and the rows' sources, read from its own
    files; None when they are not both complete: the parquet reads, names this shard, and every row's sample is
    in the tar."""
    try:
        columns = ["source", "source_sha256", "video_id", "key", "shard", "keyframe_indices", "record_version"]
        table = pq.read_table(meta, columns=columns)
        with tarfile.open(tar) as archive:
            members = {name.split(".", 1)[0] for name in archive.getnames()}
        group = json.loads((table.schema.metadata or {}).get(COMMIT_KEY, b"null")) or [shard]
    except (OSError, EOFError, ValueError, tarfile.TarError, pa.ArrowException):
        return None
    rows = table.to_pylist()
    if not rows or any(r["shard"] != shard or not sample_keys(r) <= members for r in rows):
        return None
    return [str(name) for name in group], [
        {"source": r["source"], "sha256": r["source_sha256"], "video_id": r["video_id"], "shots": 1} for r in rows
    ]


def _merge_sources(entries: list[dict]) -> list[dict]:
    """One ledger entry per source, in first-seen order, its shots summed (a source can span shards)."""
    merged: dict[str, dict] = {}
    for entry in entries:
        if entry["source"] in merged:
            merged[entry["source"]]["shots"] += entry["shots"]
        else:
            merged[entry["source"]] = dict(entry)
    return list(merged.values())


@dataclass
class _Part:
    """One shard file pair of the open commit group."""

    name: str
    rows: list[dict] = field(default_factory=list)
    bytes: int = 0
    clips: bool = False  # whether `clips/<name>.tar` was opened


class DatasetWriter:
    """Single writer of an output directory: size-bounded shards committed atomically, plus the ledger.

    Shards are filled up to `max_samples` samples and `max_bytes` bytes each, a source's rows spilling over
    into further shards when it alone is larger. The shards opened since the last commit form one commit group:
    renamed together and named by one ledger line, so a source spanning several is all in or all out."""

    def __init__(self, out: Path, max_bytes: int, max_samples: int) -> None:
        self.out = Path(out)
        self.meta_dir = self.out / "metadata"
        self.shard_dir = self.out / "shards"
        self.spool_dir = self.out / "_spool"  # workers' per-source files, consumed by add()
        self.clip_dir = self.out / CLIPS_DIR  # made when the first clip file arrives
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = lock_output(self.out)  # before anything is cleaned: another run's files are not orphans
        for d in (self.meta_dir, self.shard_dir, self.spool_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger.open(self.out / LEDGER)
        self.max_bytes = max_bytes
        self.max_samples = max_samples
        self._remove_orphans()
        self._next = 1 + max((int(s) for s in self.ledger.shards), default=-1)
        self._tar: TarAppender | None = None  # the last part's, open for writing
        self._clips: TarAppender | None = None  # the last part's clip tar, once a clip arrives
        self._parts: list[_Part] = []
        self._sources: list[dict] = []
        # closed tars of the open group are flushed to disk on this thread while the next ones are written
        self._syncer = ThreadPoolExecutor(1, thread_name_prefix="fsync")
        self._synced: list[Future] = []

    def _remove_orphans(self) -> None:
        """Delete what a killed run left half-made: spool files, `.tmp` files, and shard files no ledger line
        names. A commit group whose tars and parquets are all in place and readable is complete (its ledger line
        was lost to a torn write, or the kill came between renames and ledger line): it is recorded again, never
        deleted."""
        for path in self.spool_dir.iterdir():  # left by a killed run
            path.unlink()
        unnamed = {p.name.split(".")[0] for p in self.meta_dir.glob("*.parquet")} - self.ledger.shards
        for name in sorted(unnamed):
            found = self._read_group(name)
            if found is not None and found[0][0] == name:
                group, sources = found
                entry = {"kind": "shard", "v": RECORD_VERSION, "shard": name, "shards": group, "sources": sources}
                self.ledger.append({**entry, "recovered": True})
        for folder in (self.meta_dir, self.shard_dir, self.clip_dir):
            for path in folder.iterdir() if folder.is_dir() else ():
                if path.name.split(".")[0] not in self.ledger.shards or path.name.endswith(".tmp"):
                    path.unlink()

    def _read_group(self, name: str) -> tuple[list[str], list[dict]] | None:
        """The commit group of shard `name` and its sources, when every member is complete and agrees on it."""
        first = _committed_sources(self.meta_dir / f"{name}.parquet", self.shard_dir / f"{name}.tar", name)
        if first is None or first[0][0] in self.ledger.shards:
            return None
        group, sources = first[0], []
        for member in group:
            found = _committed_sources(self.meta_dir / f"{member}.parquet", self.shard_dir / f"{member}.tar", member)
            if found is None or found[0] != group:
                return None
            sources += found[1]
        return group, _merge_sources(sources)

    def _full(self) -> bool:
        part = self._parts[-1]
        return part.bytes >= self.max_bytes or len(part.rows) >= self.max_samples

    def _close_tars(self) -> None:
        for tar in (self._tar, self._clips):
            if tar is not None:
                tar.close()
                self._synced.append(self._syncer.submit(_fsync, tar.path))
        self._tar = self._clips = None

    def _roll(self) -> None:
        """Open the next shard of the commit group."""
        self._close_tars()
        name = f"{self._next:05d}"
        self._next += 1
        self._tar = TarAppender(self.shard_dir / f"{name}.tar.tmp")
        self._parts.append(_Part(name))

    def add(self, result: SourceResult) -> list[dict]:
        """Queue one source's samples into the open shards; returns its rows."""
        if self._parts and self._full():  # between sources: commit what is full
            self.commit()
        rows = shot_rows(result, "")
        with open(result.spool, "rb") as spool:
            for position, row in enumerate(rows):
                if not self._parts or self._full():
                    self._roll()
                part = self._parts[-1]
                row["shard"] = part.name
                for order, index in enumerate(row["keyframe_indices"]):
                    key = sample_key(row["key"], index)
                    self._member(self._tar, f"{key}.json", keyframe_json(row, order, index))
                    if index in result.images:  # absent when the run keeps no images
                        blob = result.images[index]
                        self._member(self._tar, f"{key}.{blob.ext}", _read(spool, blob))
                if position in result.clips:
                    blob = result.clips[position]
                    clip_json = json.dumps({"shot": row["key"], "identifier": row["identifier"]}).encode()
                    self._member(self._clip_tar(), f"{row['key']}.json", clip_json)
                    self._member(self._clip_tar(), f"{row['key']}.{blob.ext}", _read(spool, blob))
                part.rows.append(row)
        result.spool.unlink()
        self._sources.append(
            {
                "source": result.ref.source,
                "sha256": result.probe.sha256,
                "video_id": result.video_id,
                "shots": len(rows),
            }
        )
        return rows

    def _member(self, tar: TarAppender, name: str, data: bytes) -> None:
        self._parts[-1].bytes += tar.add(name, data)

    def _clip_tar(self) -> TarAppender:
        """The open part's clip tar (`clips/<shard>.tar`), opened when its first clip arrives."""
        if self._clips is None:
            part = self._parts[-1]
            self.clip_dir.mkdir(exist_ok=True)
            self._clips = TarAppender(self.clip_dir / f"{part.name}.tar.tmp")
            part.clips = True
        return self._clips

    def fail(self, error: SourceError) -> None:
        self.ledger.append({"kind": "error", "v": RECORD_VERSION, "time": time.time(), **error.__dict__})

    def commit(self) -> None:
        """Make the open commit group durable and visible: fsync every tar and parquet, rename the tars then the
        parquets, then one ledger line naming them all."""
        self._close_tars()
        if not self._parts:
            return
        names = [part.name for part in self._parts]
        clip_names = [part.name for part in self._parts if part.clips]
        for part in self._parts:
            table = pa.Table.from_pylist(part.rows, schema=dataset_schema())
            table = table.replace_schema_metadata({COMMIT_KEY: json.dumps(names)})
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            _fsync_write(self.meta_dir / f"{part.name}.parquet.tmp", sink.getvalue().to_pybytes())
        synced, self._synced = self._synced, []
        for future in synced:  # every tar of the group is on disk (an fsync error is raised here)
            future.result()
        for name in names:
            os.replace(self.shard_dir / f"{name}.tar.tmp", self.shard_dir / f"{name}.tar")
        for name in clip_names:
            os.replace(self.clip_dir / f"{name}.tar.tmp", self.clip_dir / f"{name}.tar")
        for name in names:
            os.replace(self.meta_dir / f"{name}.parquet.tmp", self.meta_dir / f"{name}.parquet")
        entry = {"kind": "shard", "v": RECORD_VERSION, "shard": names[0], "shards": names}
        self.ledger.append({**entry, "sources": self._sources})
        self._parts, self._sources = [], []

    def close(self) -> None:
        self.commit()
        self.write_errors()
        self.release()

    def release(self) -> None:
        """Let the output directory go: end the fsync thread and release the lock (closing its file). After an
        error this leaves the open group uncommitted; the next run deletes its `.tmp` files."""
        self._syncer.shutdown()
        self._lock.close()

    def write_errors(self) -> None:
        table = pa.Table.from_pylist(self.ledger.errors, schema=ERROR_SCHEMA)
        with atomic_path(self.out / "errors.parquet") as tmp:
            pq.write_table(table, tmp)


def write_stats(out: Path, stats: dict) -> None:
    atomic_write(Path(out) / "_stats.json", json.dumps(stats, indent=2, sort_keys=True))
