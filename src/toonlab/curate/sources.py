"""Turn CLI inputs into a deterministic VideoRef stream.

Inputs: video files, folders (searched recursively), globs, http(s) URLs, URL lists (`.txt`: one http(s) URL per
line, `#` comment lines and blank lines allowed) and Sakuga-42M parquet files (`.parquet`: one row per released
scene, `identifier` = `<post>:<scene>`). Parquet rows are grouped by post, so each post is one source, fetched
once, carrying its released scenes; rows that cannot be used are dropped and counted by reason.
"""

from __future__ import annotations

import errno
import glob
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from toonlab.curate.records import VideoRef

VIDEO_EXTENSIONS = frozenset(".mp4 .m4v .mkv .webm .avi .mov .mpg .mpeg .ogv .flv .wmv .ts .m2ts .y4m .gif".split())
URL_LIST_EXTENSIONS = frozenset({".txt"})
PARQUET_EXTENSIONS = frozenset({".parquet"})
SAKUGA_COLUMNS = ("identifier", "url_link", "scene_start_time", "scene_end_time")
_POST = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_WARNINGS = 1000  # warning lines kept (and written to _stats.json); every skip is counted
_WANTED = {"identifier": "a string '<post>:<scene>'", "url_link": "a string (the video's URL)", "fps": "a number"}
_TIMECODE = re.compile(r"^(\d+):([0-5]?\d):(\d{1,2}(?:\.\d+)?)$")


class InputError(ValueError):
    """An input argument names nothing usable (the run cannot start)."""


@dataclass
class SourceList:
    """The run's sources in order, and the input rows left out (reason -> count)."""

    refs: list[VideoRef] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)  # inputs that could not be looked at, one line each

    def skip(self, path: Path | str, reason: str) -> None:
        """Leave out a file or folder that cannot be read (a FIFO, a symlink loop, no permission): a warning line
        and a count, and the run goes on."""
        if len(self.warnings) < MAX_WARNINGS:  # the counts below stay exact
            self.warnings.append(f"{path}: {reason}")
        self.dropped[f"input skipped: {reason.split(' (')[0]}"] += 1


def collect_sources(inputs: Sequence[str]) -> SourceList:
    """Every source once (the first occurrence wins), in sorted order within each input, inputs in the order
    given. Explicit files are taken whatever their extension (a bad one becomes an error row later), except
    `.txt` (URL list) and `.parquet` (Sakuga-42M rows); folders and globs are filtered to video extensions."""
    out = SourceList()
    seen: set[str] = set()
    for item in inputs:
        for ref in _expand(item, out):
            key = ref.url if ref.url is not None else str(Path(ref.path).resolve())
            if key in seen:
                continue
            seen.add(key)
            out.refs.append(ref)
    return out


def _expand(item: str, out: SourceList) -> list[VideoRef]:
    if re.match(r"^https?://", item, re.IGNORECASE):
        return [VideoRef(source=item, url=item)]
    path = Path(item)
    kind = _kind(path, out)
    if kind == "file":
        suffix = path.suffix.lower()
        if suffix in URL_LIST_EXTENSIONS:
            return read_url_list(path)
        if suffix in PARQUET_EXTENSIONS:
            return read_sakuga_parquet(path, out.dropped)
        return [VideoRef(source=str(path), path=path)]
    if kind == "dir":
        return [_local(p) for p in _walk(path, out)]
    if kind == "skipped":
        return []
    if glob.has_magic(item):
        matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        videos = [p for p in matches if p.suffix.lower() in VIDEO_EXTENSIONS]
        return [_local(p) for p in videos if _kind(p, out, quiet_dirs=True) == "file"]
    raise InputError(f"input not found: {item}")


def _kind(path: Path, out: SourceList, quiet_dirs: bool = False) -> str:
    """ "file" (regular), "dir", "missing", or "skipped" (reported to `out`: a FIFO, socket or device, a symlink
    loop, a dangling symlink, no permission to look)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not os.path.lexists(path):
            return "missing"
        out.skip(path, "dangling symlink (its target does not exist)")
        return "skipped"
    except OSError as exc:
        reason = "symlink loop" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror or exc})"
        out.skip(path, reason)
        return "skipped"
    if stat.S_ISDIR(mode):
        return "dir" if not quiet_dirs else "missing"
    if stat.S_ISREG(mode):
        return "file"
    out.skip(path, "not a regular file (a FIFO, socket or device)")
    return "skipped"


def _walk(folder: Path, out: SourceList) -> list[Path]:
    """Video files under `folder`, sorted; symlinked folders are followed, each folder entered once (a loop is
    reported, not walked); what cannot be read is reported and left out."""
    found: list[Path] = []
    entered: set[tuple[int, int]] = set()

    def unreadable(exc: OSError) -> None:
        out.skip(exc.filename or folder, f"folder cannot be read ({exc.strerror or exc})")

    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        try:
            here = os.stat(root)
        except OSError as exc:
            unreadable(exc)
            dirs.clear()
            continue
        if (here.st_dev, here.st_ino) in entered:
            out.skip(root, "symlink loop (a folder that contains itself)")
            dirs.clear()
            continue
        entered.add((here.st_dev, here.st_ino))
        for name in files:
            path = Path(root) / name
            if path.suffix.lower() in VIDEO_EXTENSIONS and _kind(path, out, quiet_dirs=True) == "file":
                found.append(path)
    return sorted(found)


def _local(path: Path) -> VideoRef:
    return VideoRef(source=str(path), path=path)


def read_url_list(path: Path) -> list[VideoRef]:
    """One source per non-blank, non-comment line. A line that is not an http(s) URL is kept as given: the
    download stage turns it into an error row naming the line, so one typo does not stop the run."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read URL list {path}: {exc}") from exc
    refs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            refs.append(VideoRef(source=line, url=line))
    return refs


def parse_timecode(text: str) -> float | None:
    """`HH:MM:SS.mmm` (as released) -> seconds; None when malformed."""
    match = _TIMECODE.match(text.strip())
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 6)


def _missing(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in ("", "nan", "none", "null")


def read_sakuga_parquet(path: Path, dropped: Counter) -> list[VideoRef]:
    """Group a Sakuga-42M parquet's rows by post: one VideoRef per post (source and url = its `url_link`,
    video_id = the post id, scenes = its released scenes sorted by number). Rows with a NaN start, end or fps
    are dropped, as the release's own splitter did; so are malformed identifiers and times, empty scenes,
    repeated identifiers, scenes identical to another of their post (same start and end), rows whose post already
    has another URL, and the rows of a post whose URL an earlier post (in post-id order) already has: each drop is
    counted by reason, so every row ends as a scene or a count. Posts come out in post-id order. A column of the
    wrong type is refused up front (InputError naming it)."""
    pq = _parquet()
    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InputError(f"cannot read parquet {path}: {exc}") from exc
    names = set(handle.schema_arrow.names)
    missing = [c for c in SAKUGA_COLUMNS if c not in names]
    if missing:
        raise InputError(f"{path} is not in the Sakuga-42M schema: missing column(s) {', '.join(missing)}")
    columns = [*SAKUGA_COLUMNS, *(["fps"] if "fps" in names else [])]
    _check_types(path, handle.schema_arrow, columns)
    posts: dict[str, dict] = {}
    for batch in handle.iter_batches(columns=columns, batch_size=65536):
        data = batch.to_pydict()
        for row in zip(*(data[c] for c in columns), strict=True):
            reason = _add_row(posts, dict(zip(columns, row, strict=True)))
            if reason:
                dropped[reason] += 1
    refs = []
    first_post: dict[str, str] = {}  # url -> the first post (in post-id order) that uses it
    for post in sorted(posts, key=lambda p: (0, int(p), "") if p.isdigit() else (1, 0, p)):
        entry = posts[post]
        if first_post.setdefault(entry["url"], post) != post:  # the same video under another post id
            dropped["post shares its url_link with an earlier post"] += len(entry["scenes"])
            continue
        scenes = tuple(sorted(entry["scenes"].values()))
        refs.append(VideoRef(source=entry["url"], url=entry["url"], scenes=scenes, video_id=post))
    return refs


def _check_types(path: Path, schema, columns: list[str]) -> None:
    """Refuse, before any row is read, a column whose type the Sakuga-42M reader cannot take."""
    import pyarrow as pa

    for column in columns:
        kind = schema.field(column).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if column == "fps":
            ok = pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)
        else:
            ok = pa.types.is_string(kind) or pa.types.is_large_string(kind)
        if not ok:
            want = _WANTED.get(column, "a string 'HH:MM:SS.mmm'")
            raise InputError(f"{path} is not in the Sakuga-42M schema: column {column} is {kind}, expected {want}")


def _add_row(posts: dict[str, dict], row: dict) -> str | None:
    """Add one parquet row to its post; return the reason it was dropped, or None."""
    for column in ("scene_start_time", "scene_end_time", "fps"):
        if column in row and _missing(row[column]):
            return f"NaN {column}"
    identifier = row["identifier"]
    post, sep, scene = (identifier or "").strip().partition(":")
    if not sep or not _POST.match(post) or not scene.isdigit():
        return "malformed identifier (want <post>:<scene>)"
    url = row["url_link"]
    if _missing(url):
        return "NaN url_link"
    url = url.strip()
    start, end = parse_timecode(str(row["scene_start_time"])), parse_timecode(str(row["scene_end_time"]))
    if start is None or end is None:
        return "malformed scene time (want HH:MM:SS.mmm)"
    if end <= start:
        return "empty scene (end <= start)"
    entry = posts.setdefault(post, {"url": url, "scenes": {}, "spans": set()})
    if entry["url"] != url:
        return "post listed with two different url_link values"
    number = int(scene)
    if number in entry["scenes"]:
        return "repeated identifier"
    if (start, end) in entry["spans"]:  # one clip, listed twice: keep the first
        return "identical scene (same start and end as another of its post)"
    entry["spans"].add((start, end))
    entry["scenes"][number] = (number, start, end)
    return None


def _parquet():
    import pyarrow.parquet as pq

    return pq
