"""One decode pass over a video: tiny analysis frames for every frame, full resolution only on demand.

The analysis frames are made from the decoder's own YUV planes (no RGB conversion of the full frame):
the luma plane resized to 64x64 with bilinear interpolation is exactly what the Sakuga keyframe rule
compares, and the three planes at 64x64 feed the shot detector. Full-resolution RGB is produced only
for frames a caller asks to keep, from the `av.VideoFrame` still held in the frame record.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from queue import Full, Queue

import numpy as np

from toonlab.extras import require

ANALYSIS_SIDE = 64
_PLANAR_YUV = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv411p", "yuv410p"})
# Limited-range luma (16..235) stretched to full range, as an RGB->Y conversion of the decoded picture gives.
_LIMITED_TO_FULL = np.clip((np.arange(256) - 16) * 255.0 / 219.0 + 0.5, 0, 255).astype(np.uint8)


_END = object()  # end-of-stream marker on the decode queue


class DecodeError(RuntimeError):
    """The source cannot be opened or decoded; the message says why in words."""


@dataclass(frozen=True)
class StreamInfo:
    codec: str
    width: int
    height: int
    fps: Fraction
    declared_frames: int  # container's frame count (0 when unknown): only used to detect truncation


@dataclass
class FrameBatch:
    """Consecutive decoded frames [start, start + len(frames)) with their analysis planes."""

    start: int
    luma: np.ndarray  # (B, 64, 64) uint8, full-range Y
    yuv: np.ndarray  # (B, 64, 64, 3) uint8, Y U V planes resized, interleaved
    frames: list  # B av.VideoFrame, for full-resolution output on demand

    def __len__(self) -> int:
        return len(self.frames)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class VideoDecoder:
    """Open a file with PyAV and stream `FrameBatch`es; use as a context manager."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.path = Path(path)
        self._threads = threads
        self._container = None
        self._producer: threading.Thread | None = None
        self.info: StreamInfo | None = None

    def __enter__(self) -> VideoDecoder:
        av = require("av")
        if self.path.stat().st_size == 0:
            raise DecodeError("empty file (0 bytes)")
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.FFmpegError as exc:
            raise DecodeError(f"cannot open as a video container: {_ffmpeg_reason(exc)}") from exc
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams}) or ["none"]
            raise DecodeError(f"no video stream (streams found: {', '.join(kinds)})")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if self._threads:
            stream.codec_context.thread_count = self._threads
        ctx = stream.codec_context
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps or fps <= 0:
            raise DecodeError("video stream has no usable frame rate")
        if not ctx.width or not ctx.height:
            raise DecodeError(f"video stream has no picture size (codec {ctx.name})")
        self.info = StreamInfo(
            codec=ctx.name,
            width=int(ctx.width),
            height=int(ctx.height),
            fps=Fraction(fps.numerator, fps.denominator),
            declared_frames=int(stream.frames or 0),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt()
        if self._container is not None:
            self._container.close()

    def batches(self, size: int = 16) -> Iterator[FrameBatch]:
        """Decode the stream once, `size` frames at a time (memory is bounded by the batch, not the video).

        Decoding runs on a background thread, two batches ahead, so the caller's analysis of one batch overlaps
        the decoding of the next (FFmpeg, OpenCV and most NumPy work run without the GIL)."""
        queue: Queue = Queue(maxsize=2)
        self._stop = threading.Event()
        self._producer = threading.Thread(target=self._produce, args=(size, queue), daemon=True)
        self._producer.start()
        try:
            while (item := queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self._halt()

    def _halt(self) -> None:
        if self._producer is not None:
            self._stop.set()
            self._producer.join()
            self._producer = None

    def _produce(self, size: int, queue: Queue) -> None:
        try:
            for batch in self._decode(size):
                if not self._offer(queue, batch):
                    return
            self._offer(queue, _END)
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._offer(queue, exc)

    def _offer(self, queue: Queue, item: object) -> bool:
        while not self._stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def _decode(self, size: int) -> Iterator[FrameBatch]:
        av = require("av")
        stream = self._container.streams.video[0]
        planes = _AnalysisPlanes()
        yuv = np.empty((size, 3, ANALYSIS_SIDE, ANALYSIS_SIDE), np.uint8)  # planar while filling
        frames: list = []
        full_range: list[bool] = []
        start = 0
        try:
            for frame in self._container.decode(stream):
                planes(frame, yuv[len(frames)])
                full_range.append(frame.format.name.startswith("yuvj"))
                frames.append(frame)
                if len(frames) == size:
                    yield _batch(start, yuv, frames, full_range)
                    start += size
                    frames, full_range = [], []
        except av.FFmpegError as exc:
            raise DecodeError(f"decode error after frame {start + len(frames)}: {_ffmpeg_reason(exc)}") from exc
        if frames:
            yield _batch(start, yuv[: len(frames)], frames, full_range)


def _batch(start: int, planar: np.ndarray, frames: list, full_range: list[bool]) -> FrameBatch:
    yuv = np.ascontiguousarray(planar.transpose(0, 2, 3, 1))  # (B, 3, 64, 64) -> (B, 64, 64, 3)
    luma = planar[:, 0].copy()
    limited = ~np.asarray(full_range)
    luma[limited] = _LIMITED_TO_FULL[luma[limited]]
    return FrameBatch(start=start, luma=luma, yuv=yuv, frames=frames)


class _AnalysisPlanes:
    """Writes a frame's Y, U, V planes, each resized to 64x64 with bilinear interpolation, into `out` (3, 64, 64).

    Pictures that are not planar 8-bit YUV (cinepak's rgb24, msvideo1's rgb555, 10-bit video) go through one
    reused FFmpeg scaler to yuv420p first.
    """

    def __init__(self) -> None:
        self._cv2 = require("cv2")
        self._reformatter = require("av.video.reformatter").VideoReformatter()

    def __call__(self, frame, out: np.ndarray) -> None:
        if frame.format.name not in _PLANAR_YUV:
            frame = self._reformatter.reformat(frame, format="yuv420p")
        for i in range(3):
            plane = frame.planes[i]
            view = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            self._cv2.resize(view, (ANALYSIS_SIDE, ANALYSIS_SIDE), dst=out[i], interpolation=self._cv2.INTER_LINEAR)


def full_resolution_bgr(frame, max_side: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 BGR of a kept frame, optionally scaled so its longer side is <= max_side."""
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
        return frame.reformat(width=width, height=height, format="bgr24", interpolation="AREA").to_ndarray()
    return frame.to_ndarray(format="bgr24")


def _ffmpeg_reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(";")[0].strip().rstrip(":")
