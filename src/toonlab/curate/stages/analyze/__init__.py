"""The per-video stage: probe, shots, unique drawings and keyframe images, all in one decode pass."""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from toonlab.curate.records import Blob, Probe, Shot, SourceResult, VideoRef
from toonlab.curate.stage import Resources, StageError
from toonlab.curate.stages.analyze.decode import DecodeError, VideoDecoder, full_resolution_bgr, sha256_file
from toonlab.curate.stages.analyze.keyframes import KeyframeSelector, shot_keyframes
from toonlab.curate.stages.analyze.shots import GivenShots, ShotDetector, make_detector
from toonlab.curate.stages.analyze.spool import Spool
from toonlab.extras import require

BATCH = 16  # frames analysed together; two batches of full-resolution frames are held at most
# Fewer frames than this share of what the container declares means the file is cut short or corrupt.
_TRUNCATED_SHARE = 0.9


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

    def encode(self, index: int, frame) -> bytes:
        cv2 = require("cv2")
        ok, buf = cv2.imencode("." + self.ext, full_resolution_bgr(frame, self.max_side), self._params)
        if not ok:
            raise StageError("encode", f"could not encode frame {index} as {self.ext}")
        return buf.tobytes()


class _EncodeQueue:
    """Encodes kept frames on background threads while decoding goes on (OpenCV and FFmpeg's scaler release
    the GIL) and appends them to the source's spool; at most `depth` frames wait, so memory stays flat.
    With no encoder (metadata-only runs) it records nothing. `seconds` sums the encoding time."""

    def __init__(self, encoder: ImageEncoder | None, spool: Spool, threads: int, depth: int = 8) -> None:
        self._encoder = encoder
        self._spool = spool
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="encode")
        self._pending: deque[tuple[int, Future]] = deque()
        self._depth = depth
        self._done: dict[int, Blob] = {}
        self._queued: set[int] = set()
        self._lock = threading.Lock()
        self.seconds = 0.0

    def _encode(self, index: int, frame) -> bytes:
        t = time.perf_counter()
        data = self._encoder.encode(index, frame)
        with self._lock:
            self.seconds += time.perf_counter() - t
        return data

    def add(self, index: int, frame) -> None:
        if self._encoder is None or index in self._queued:
            return
        self._queued.add(index)
        self._pending.append((index, self._pool.submit(self._encode, index, frame)))
        while len(self._pending) > self._depth:
            self._collect(*self._pending.popleft())

    def _collect(self, index: int, future: Future) -> None:
        self._done[index] = self._spool.put(future.result(), self._encoder.ext)

    def finish(self) -> dict[int, Blob]:
        try:
            while self._pending:
                self._collect(*self._pending.popleft())
        finally:
            self._pool.shutdown(cancel_futures=True)
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

    Shots: `shots="detect"` runs the shot detector; `"given"` cuts the source's released scenes (`ref.scenes`,
    e.g. from a Sakuga-42M parquet) at the stream's frame rate, and frames between released scenes belong to no
    shot; `"auto"` (default) uses the released scenes when the source has them.
    """

    name = "analyze"
    resources = Resources(cpus=1.0)

    def __init__(
        self,
        ssim_threshold: float,
        min_scene_len: int,
        detector: str,
        images: ImageEncoder | None,
        spool_dir: Path,
        threads: int = 0,
        shots: str = "auto",
    ) -> None:
        if shots not in ("auto", "detect", "given"):
            raise ValueError(f"shots must be auto, detect or given, not {shots!r}")
        self.shots = shots
        self.spool_dir = spool_dir
        self.threads = threads  # decoder threads; 0 lets FFmpeg choose
        self.ssim_threshold = ssim_threshold
        self.min_scene_len = min_scene_len
        self.detector_name = detector
        self.images = images

    def setup(self) -> None:
        require("av")
        require("cv2")

    def process(self, ref: VideoRef) -> SourceResult:
        if ref.path is None:
            raise StageError("probe", "the source has no local file (a remote source must be downloaded first)")
        given = self.shots == "given" or (self.shots == "auto" and ref.scenes is not None)
        if given and not ref.scenes:
            raise StageError("shots", "--shots given needs released scenes (Sakuga-42M parquet); this source has none")
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            sha = sha256_file(ref.path)
            size = ref.path.stat().st_size
        except OSError as exc:
            raise StageError("probe", f"cannot read file: {exc.strerror or exc}") from exc
        timings["hash"] = time.perf_counter() - t0
        spool = Spool(self.spool_dir)
        dropped: dict[str, int] = {}
        try:
            with VideoDecoder(ref.path, self.threads) as decoder:
                detector = GivenShots(ref.scenes, decoder.info.fps) if given else None
                shots, images, n_frames = self._one_pass(decoder, spool, timings, detector)
                info = decoder.info
            self._check(n_frames, info.declared_frames)
            if detector is not None:
                shots, dropped = self._given(detector, shots, n_frames)
        except DecodeError as exc:
            spool.discard()
            raise StageError("decode", str(exc)) from exc
        except BaseException:
            spool.discard()
            raise
        spool.close()
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
            video_id=ref.video_id or video_id_for(ref.path, sha),
            probe=probe,
            shots=shots,
            spool=spool.path,
            images=images,
            timings=timings,
            dropped=dropped,
        )

    @staticmethod
    def _given(detector: GivenShots, shots: list[Shot], n_frames: int) -> tuple[list[Shot], dict[str, int]]:
        """Keep the released scenes that lie in the decoded stream; say how many did not."""
        outside = len(detector.ranges) - len(shots)
        if not shots:
            raise StageError(
                "shots", f"none of the {len(detector.ranges)} released scenes lies inside the {n_frames} decoded frames"
            )
        return shots, ({"released scene outside the decoded stream": outside} if outside else {})

    @staticmethod
    def _check(n_frames: int, declared: int) -> None:
        if n_frames == 0:
            raise StageError("decode", "no frames could be decoded from the video stream")
        if declared and n_frames < _TRUNCATED_SHARE * declared:
            raise StageError(
                "decode", f"truncated or corrupt: decoded {n_frames} of the {declared} frames the container declares"
            )

    def _one_pass(
        self, decoder: VideoDecoder, spool: Spool, timings: dict[str, float], given: GivenShots | None = None
    ):
        detector: ShotDetector = given or make_detector(self.detector_name, self.min_scene_len)
        selector = KeyframeSelector(self.ssim_threshold)
        images = _EncodeQueue(self.images, spool, threads=self.threads or 2)
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
        if given is not None:  # released scenes, numbered as released; frames between them are in no shot
            ranges = given.shots(n)
        else:
            bounds = [0, *sorted(set(cuts)), n]
            spans = [(s, e) for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e > s]
            ranges = [(number, s, e) for number, (s, e) in enumerate(spans, start=1)]
        shots = [Shot(start=s, end=e, keyframes=shot_keyframes(changed, s, e), number=k) for k, s, e in ranges]
        wanted = {k for shot in shots for k in shot.keyframes}
        t_analyze += time.perf_counter() - t
        t = time.perf_counter()
        encoded = images.finish()
        timings.update(decode=t_decode, analyze=t_analyze, encode=images.seconds, encode_wait=time.perf_counter() - t)
        return shots, {k: v for k, v in encoded.items() if k in wanted}, n
