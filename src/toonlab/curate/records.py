"""Small typed records passed between curate stages: what a source is, what one pass found in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

# 2: key -> value columns as list<struct<key, value>> (1: arrow maps); one shard sample per keyframe
# (1: one per shot). Readers read both (pairs.upgrade_maps, shards.iter_shots).
RECORD_VERSION = 2


@dataclass(frozen=True)
class VideoRef:
    """One source video: `source` as the user gave it, `path` where its bytes are on disk.

    A remote source has `url` set and no `path` until the download stage has fetched it. A source from a
    Sakuga-42M parquet also carries the released `scenes` (scene number, start and end in seconds, cut at the
    stream's frame rate by the `given` shot mode) and its `video_id` (the post id).
    """

    source: str
    path: Path | None = None
    url: str | None = None
    scenes: tuple[tuple[int, float, float], ...] | None = None
    video_id: str | None = None


@dataclass(frozen=True)
class Probe:
    """Facts read from the stream itself (not container metadata) plus the file's bytes."""

    codec: str
    width: int
    height: int
    fps: Fraction  # from the stream's average frame rate, as a rational
    frame_count: int  # frames actually decoded
    file_size: int  # bytes
    sha256: str

    @property
    def duration(self) -> float:
        return float(self.frame_count / self.fps) if self.fps else 0.0


@dataclass(frozen=True)
class Shot:
    """A view into a video: frames [start, end) plus the unique drawings found in it."""

    start: int
    end: int  # exclusive
    keyframes: tuple[int, ...]  # absolute frame numbers, first one == start
    # the shot's number in its identifier (`<video_id>:<number>`): 1, 2, ... for detected shots, the released
    # scene number for given ones (which need not be contiguous: frames between released scenes are in no shot)
    number: int = 0

    @property
    def frame_number(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Blob:
    """One shard member's bytes, stored in the source's spool file at [offset, offset + size)."""

    offset: int
    size: int
    ext: str  # file extension in the shard: "jpg", "webp", "png", "mp4"


@dataclass
class SourceResult:
    """Everything one pass over one source produced; shipped from a worker to the writer."""

    ref: VideoRef
    video_id: str
    probe: Probe
    shots: list[Shot]
    spool: Path  # file holding the encoded images and clips (see spool.py)
    images: dict[int, Blob]  # absolute frame number -> encoded image, for every shot keyframe
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    clips: dict[int, Blob] = field(default_factory=dict)  # shot position -> clip file (--clips)
    # per shot position: column -> value, filled by annotators (see annotate/base.py)
    annotations: list[dict[str, object]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> count of things left out (e.g. scenes)


@dataclass(frozen=True)
class SourceError:
    """A source that could not be processed: which stage failed and why, in words."""

    source: str
    stage: str
    reason: str
    detail: str = ""  # traceback text, kept for --debug and the errors file
