"""The per-video stage: probe, shots, unique drawings and keyframe images, all in one decode pass."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonlab.curate.decode import DecodeError, VideoDecoder, full_resolution_bgr, sha256_file
from toonlab.curate.keyframes import KeyframeSelector, shot_keyframes
from toonlab.curate.records import Keyframe, Probe, Shot, SourceResult, VideoRef
from toonlab.curate.shots import ShotDetector, make_detector
from toonlab.extras import require

BATCH = 16  # frames analysed together; two batches of full-resolution frames are held at most
# Fewer frames than this share of what the container declares means the file is cut short or corrupt.
_TRUNCATED_SHARE = 0.9


class StageError(RuntimeError):
    """A source failed in a named stage; `reason` is a sentence for the errors table."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs, so an executor (local pool, Ray) can place it."""

    cpus: float = 1.0
    gpus: float = 0.0


class ImageEncoder:
    """Full-resolution keyframe -> encoded bytes (JPEG, WebP or PNG) with OpenCV."""

    def __init__(self, fmt: str = "jpg", quality: int = 90, max_side: int | None = None) -> None:
        cv2 = require("cv2")
        self.ext = fmt
        self.max_side = max_side
        self._params = {
            "jpg": [cv2.IMWRITE_JPEG_QUALITY, quality],
            "webp": [cv2.IMWRITE_WEBP_QUALITY, quality],
            "png": [cv2.IMWRITE_PNG_COMPRESSION, 3],
        }[fmt]

    def encode(self, index: int, frame) -> Keyframe:
        cv2 = require("cv2")
        ok, buf = cv2.imencode("." + self.ext, full_resolution_bgr(frame, self.max_side), self._params)
        if not ok:
            raise StageError("encode", f"could not encode frame {index} as {self.ext}")
        return Keyframe(index=index, data=buf.tobytes(), ext=self.ext)


class _EncodeQueue:
    """Encodes kept frames on background threads while decoding goes on (OpenCV and FFmpeg's scaler release
    the GIL); at most `depth` frames wait, so memory stays flat. `seconds` sums the encoding time."""

    def __init__(self, encoder: ImageEncoder, threads: int, depth: int = 8) -> None:
        self._encoder = encoder
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="encode")
        self._pending: deque[Future] = deque()
        self._depth = depth
        self._done: dict[int, Keyframe] = {}
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self.seconds = 0.0

    def _encode(self, index: int, frame) -> Keyframe:
        t = time.perf_counter()
        image = self._encoder.encode(index, frame)
        with self._lock:
            self.seconds += time.perf_counter() - t
        return image

    def add(self, index: int, frame) -> None:
        if index in self._queued:
            return
        self._queued.add(index)
        self._pending.append(self._pool.submit(self._encode, index, frame))
        while len(self._pending) > self._depth:
            self._collect(self._pending.popleft())

    def _collect(self, future: Future) -> None:
        image = future.result()
        self._done[image.index] = image

    def finish(self) -> dict[int, Keyframe]:
        while self._pending:
            self._collect(self._pending.popleft())
        self._pool.shutdown()
        return self._done


def video_id_for(path: Path, sha256: str) -> str:
    """Deterministic, dot-free id: the file stem (safe characters only) plus 8 hex digits of its hash."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem).strip("_")[:48] or "video"
    return f"{stem}-{sha256[:8]}"


class AnalyzeStage:
    """Sakuga-style analysis of one source video.

    Contract: `process(ref)` is pure and retry-safe; it raises `StageError` with a readable reason when the
    source is unusable. One decode pass makes 64x64 analysis frames for the shot detector and the keyframe
    rule; full-resolution RGB is produced only for frames kept as keyframes.
    """

    name = "analyze"
    resources = Resources(cpus=1.0)

    def __init__(
        self, ssim_threshold: float, min_scene_len: int, detector: str, images: ImageEncoder, threads: int = 0
    ) -> None:
        self.threads = threads  # decoder threads; 0 lets FFmpeg choose
        self.ssim_threshold = ssim_threshold
        self.min_scene_len = min_scene_len
        self.detector_name = detector
        self.images = images

    def setup(self) -> None:
        require("av")
        require("cv2")

    def process(self, ref: VideoRef) -> SourceResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            sha = sha256_file(ref.path)
            size = ref.path.stat().st_size
        except OSError as exc:
            raise StageError("probe", f"cannot read file: {exc.strerror or exc}") from exc
        timings["hash"] = time.perf_counter() - t0
        try:
            with VideoDecoder(ref.path, self.threads) as decoder:
                shots, images, n_frames = self._one_pass(decoder, timings)
                info = decoder.info
        except DecodeError as exc:
            raise StageError("decode", str(exc)) from exc
        if n_frames == 0:
            raise StageError("decode", "no frames could be decoded from the video stream")
        if info.declared_frames and n_frames < _TRUNCATED_SHARE * info.declared_frames:
            raise StageError(
                "decode",
                f"truncated or corrupt: decoded {n_frames} of the {info.declared_frames} frames the container declares",
            )
        probe = Probe(
            codec=info.codec,
            width=info.width,
            height=info.height,
            fps=info.fps,
            frame_count=n_frames,
            file_size=size,
            sha256=sha,
        )
        return SourceResult(
            ref=ref,
            video_id=video_id_for(ref.path, sha),
            probe=probe,
            shots=shots,
            images=images,
            timings=timings,
        )

    def _one_pass(self, decoder: VideoDecoder, timings: dict[str, float]):
        detector: ShotDetector = make_detector(self.detector_name, self.min_scene_len)
        selector = KeyframeSelector(self.ssim_threshold)
        images = _EncodeQueue(self.images, threads=self.threads or 2)
        changed: list[int] = []  # frames whose SSIM to the previous frame fell below the threshold
        cuts: list[int] = []
        previous: dict[int, object] = {}  # the previous batch's frames, for cuts confirmed after it ended
        window: dict[int, object] = {}
        t_decode = t_analyze = 0.0
        n = 0
        batches = decoder.batches(BATCH)
        while True:
            t = time.perf_counter()
            batch = next(batches, None)
            t_decode += time.perf_counter() - t
            if batch is None:
                break
            t = time.perf_counter()
            n = batch.start + len(batch)
            current = dict(enumerate(batch.frames, start=batch.start))
            window = {**previous, **current}
            keep, _ = selector.push(batch.luma)
            kept = (np.flatnonzero(keep) + batch.start).tolist()
            changed.extend(i for i in kept if i > 0)
            new_cuts = detector.push(batch.start, batch.yuv)
            for index in kept + new_cuts:
                images.add(index, window[index])
            cuts += new_cuts
            previous = current
            t_analyze += time.perf_counter() - t
        t = time.perf_counter()
        for cut in detector.finish(n):
            cuts.append(cut)
            images.add(cut, window[cut])
        window = previous = {}
        bounds = [0, *sorted(set(cuts)), n]
        shots = [
            Shot(start=s, end=e, keyframes=shot_keyframes(changed, s, e))
            for s, e in zip(bounds[:-1], bounds[1:], strict=True)
            if e > s
        ]
        wanted = {k for shot in shots for k in shot.keyframes}
        t_analyze += time.perf_counter() - t
        t = time.perf_counter()
        encoded = images.finish()
        timings.update(decode=t_decode, analyze=t_analyze, encode=images.seconds, encode_wait=time.perf_counter() - t)
        return shots, {k: v for k, v in encoded.items() if k in wanted}, n
