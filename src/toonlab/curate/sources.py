"""Turn CLI inputs into a deterministic VideoRef stream.

Inputs: video files, folders (searched recursively), globs, http(s) URLs, URL lists (`.txt`: one http(s) URL per
line, `#` comment lines and blank lines allowed) and Sakuga-42M parquet files (`.parquet`: one row per released
scene, `identifier` = `<post>:<scene>`). Parquet rows are grouped by post, so each post is one source, fetched
once, carrying its released scenes; rows that cannot be used are dropped and counted by reason.
"""

from __future__ import annotations

import glob
import math
import re
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
_TIMECODE = re.compile(r"^(\d+):([0-5]?\d):(\d{1,2}(?:\.\d+)?)$")


class InputError(ValueError):
    """An input argument names nothing usable (the run cannot start)."""


@dataclass
class SourceList:
    """The run's sources in order, and the input rows left out (reason -> count)."""

    refs: list[VideoRef] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)


def collect_sources(inputs: Sequence[str]) -> SourceList:
    """Every source once (the first occurrence wins), in sorted order within each input, inputs in the order
    given. Explicit files are taken whatever their extension (a bad one becomes an error row later), except
    `.txt` (URL list) and `.parquet` (Sakuga-42M rows); folders and globs are filtered to video extensions."""
    out = SourceList()
    seen: set[str] = set()
    for item in inputs:
        for ref in _expand(item, out.dropped):
            key = ref.url if ref.url is not None else str(Path(ref.path).resolve())
            if key in seen:
                continue
            seen.add(key)
            out.refs.append(ref)
    return out


def _expand(item: str, dropped: Counter) -> list[VideoRef]:
    if re.match(r"^https?://", item, re.IGNORECASE):
        return [VideoRef(source=item, url=item)]
    path = Path(item)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in URL_LIST_EXTENSIONS:
            return read_url_list(path)
        if suffix in PARQUET_EXTENSIONS:
            return read_sakuga_parquet(path, dropped)
        return [VideoRef(source=str(path), path=path)]
    if path.is_dir():
        return [_local(p) for p in sorted(path.rglob("*")) if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    if glob.has_magic(item):
        matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
        return [_local(p) for p in matches if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    raise InputError(f"input not found: {item}")


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
    repeated identifiers and rows whose post already has another URL. Posts come out in post-id order."""
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
    posts: dict[str, dict] = {}
    for batch in handle.iter_batches(columns=columns, batch_size=65536):
        data = batch.to_pydict()
        for row in zip(*(data[c] for c in columns), strict=True):
            reason = _add_row(posts, dict(zip(columns, row, strict=True)))
            if reason:
                dropped[reason] += 1
    refs = []
    for post in sorted(posts, key=lambda p: (0, int(p), "") if p.isdigit() else (1, 0, p)):
        entry = posts[post]
        scenes = tuple(sorted(entry["scenes"].values()))
        refs.append(VideoRef(source=entry["url"], url=entry["url"], scenes=scenes, video_id=post))
    return refs


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
    entry = posts.setdefault(post, {"url": url, "scenes": {}})
    if entry["url"] != url:
        return "post listed with two different url_link values"
    number = int(scene)
    if number in entry["scenes"]:
        return "repeated identifier"
    entry["scenes"][number] = (number, start, end)
    return None


def _parquet():
    import pyarrow.parquet as pq

    return pq
