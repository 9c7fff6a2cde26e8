"""The per-video stage: probe, shots, unique drawings and keyframe images, all in one decode pass."""

from __future__ import annotations

import gc
import re
import threading
import time
from array import array
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from toonlab.curate.choices import ShotMode, choose
from toonlab.curate.records import Blob, Probe, Shot, SourceResult, VideoRef
from toonlab.curate.stage import Resources, StageError
from toonlab.curate.stages.analyze.decode import (
    MAX_FRAME_PIXELS,
    QUEUED_BYTES,
    DecodeError,
    VideoDecoder,
    frame_bytes,
    sha256_file,
)
from toonlab.curate.stages.analyze.images import EncodeError, ImageEncoder, YuvJpegEncoder, upright_turns
from toonlab.curate.stages.analyze.keyframes import KeyframeSelector, shot_keyframes
from toonlab.curate.stages.analyze.shots import GivenShots, ShotDetector, make_detector
from toonlab.curate.stages.analyze.spool import Spool
from toonlab.extras import require
from toonlab.io import cpu_share, lower_this_thread

BATCH = 16  # frames analysed together at most (fewer for large pictures: decode.batch_size)
ENCODE_THREADS = 2  # keyframe encoder threads when the stage is given no thread count
# Encoder threads run this much nicer than the decoding and analysing threads: with every core busy, the
# single-threaded decoder (the run's critical path) and the analysis get the CPU first and the encoders, which
# have `depth` frames of slack, fill the gaps (measured on 2 vCPUs, 20,000-frame 640x480 H.264, default run:
# faster in 9 of 10 alternating pairs, by 0-22%; nice 10 and a deeper queue were no better).
ENCODE_NICENESS = 5
# Fewer frames than this share of what the container declares means the file is cut short or corrupt.
_TRUNCATED_SHARE = 0.9


Encoder = ImageEncoder | YuvJpegEncoder


class _EncodeQueue:
    """Encodes kept frames on background threads while decoding goes on (libjpeg-turbo, OpenCV and FFmpeg's
    scaler release the GIL), each thread appending its image to the source's spool (in the order they finish:
    the blobs record where each is), so the analysing thread never writes; at most `depth` frames wait (fewer for
    large pictures: the waiting frames stay within a quarter of `QUEUED_BYTES`), so memory stays flat. The threads
    run `ENCODE_NICENESS` nicer than the thread that made the queue. With no encoder (metadata-only runs) it
    records nothing. `seconds` sums the encoding time."""

    def __init__(self, encoder: Encoder | None, spool: Spool, threads: int, depth: int = 8) -> None:
        self._encoder = encoder
        self._spool = spool
        self._pool = ThreadPoolExecutor(
            max(1, threads), thread_name_prefix="encode", initializer=lower_this_thread, initargs=(ENCODE_NICENESS,)
        )
        self._pending: deque[tuple[int, Future]] = deque()
        self._depth = depth
        self._done: dict[int, Blob] = {}
        self._queued: set[int] = set()
        self._lock = threading.Lock()  # the spool's end and `seconds`
        self.seconds = 0.0

    def _encode(self, index: int, frame) -> Blob:
        t = time.perf_counter()
        try:
            data = self._encoder.encode(index, frame)
        except EncodeError as exc:
            raise StageError("encode", str(exc)) from exc
        with self._lock:
            self.seconds += time.perf_counter() - t
            return self._spool.put(data, self._encoder.ext)

    def add(self, index: int, frame) -> None:
        if self._encoder is None or index in self._queued:
            return
        self._queued.add(index)
        self._pending.append((index, self._pool.submit(self._encode, index, frame)))
        depth = max(1, min(self._depth, QUEUED_BYTES // 4 // frame_bytes(frame.width, frame.height)))
        while len(self._pending) > depth:
            self._collect(*self._pending.popleft())

    def _collect(self, index: int, future: Future) -> None:
        self._done[index] = future.result()

    def finish(self) -> dict[int, Blob]:
        try:
            while self._pending:
                self._collect(*self._pending.popleft())
        finally:
            self.close()
        return self._done

    def close(self) -> None:
        """Stop: queued frames are dropped, those being encoded are finished (and spooled) first."""
        self._pool.shutdown(cancel_futures=True)


def decoder_threads(threads: int, encodes: bool) -> int:
    """The decoder's thread count for a stage given `threads` (0: none given): that count when given; else, when
    keyframes are encoded, the CPUs the encoder threads leave (at least 1), since FFmpeg's frame threading costs a
    third more CPU per frame (640x480 H.264: 0.95 vs 0.70 ms) and the encoders need that CPU; else (metadata only)
    0, FFmpeg's choice (one frame thread per CPU instead was faster in 5 of 10 alternating pairs, slower in 4)."""
    if threads or not encodes:
        return threads
    return max(1, cpu_share() - ENCODE_THREADS)


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
        images: Encoder | None,
        spool_dir: Path,
        threads: int = 0,
        shots: str = "auto",
        kernels: str = "fast",
        max_frame_pixels: int = MAX_FRAME_PIXELS,
    ) -> None:
        """`kernels`: "fast" (compiled analysis kernels) or "reference" (NumPy/OpenCV); same results.
        `max_frame_pixels`: a source whose pictures are larger fails with its size named (memory bound)."""
        self.shots = choose(ShotMode, shots, "shots")
        self.spool_dir = spool_dir
        self.threads = threads  # decoder and encoder threads; 0: chosen (`decoder_threads`)
        self.ssim_threshold = ssim_threshold
        self.min_scene_len = min_scene_len
        self.detector_name = detector
        self.images = images
        self.kernels = kernels
        self.max_frame_pixels = max_frame_pixels

    def setup(self) -> None:
        require("av")
        # the stage declares one CPU: OpenCV's own thread pool (on 64x64 analysis frames) only oversubscribes it
        require("cv2").setNumThreads(1)
        if self.kernels == "fast":  # compile (or load from numba's cache) once per worker, not in the first source
            from toonlab.curate.stages.analyze.kernels import warm_up

            warm_up()
        # Everything imported so far (numba, pandas, pyarrow: millions of objects) lives for the whole run; leave
        # it out of the collector's full passes, which the per-frame objects of decoding would otherwise trigger
        # over and over (a fifth of the run's CPU time in profiles).
        gc.freeze()

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
            with VideoDecoder(
                ref.path, decoder_threads(self.threads, self.images is not None), self.max_frame_pixels
            ) as decoder:
                detector = GivenShots(ref.scenes, decoder.info.fps) if given else None
                shots, images, n_frames = self._one_pass(decoder, spool, timings, detector)
                info, rotation = decoder.info, decoder.rotation
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
            rotation=90 * upright_turns(rotation),
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
        images = _EncodeQueue(self.images, spool, threads=self.threads or ENCODE_THREADS)
        try:
            return self._scan(decoder, images, timings, given)
        finally:  # on an error too: no encoder thread writes to the spool once this returns
            images.close()

    def _scan(self, decoder: VideoDecoder, images: _EncodeQueue, timings: dict[str, float], given: GivenShots | None):
        """The decode pass: shots, their keyframes, and the encoded images of those keyframes."""
        detector: ShotDetector = given or make_detector(self.detector_name, self.min_scene_len, self.kernels)
        selector = KeyframeSelector(self.ssim_threshold, self.kernels)
        changed: list[int] = []  # frames whose SSIM to the previous frame fell below the threshold
        cuts: list[int] = []
        times = array("d")  # (n,) seconds of each frame from the first, from the stream's timestamps
        recent: dict[int, object] = {}  # the newest frames, for cuts confirmed a few frames after they happened
        t_decode = t_analyze = 0.0
        n = 0
        batches = decoder.batches(BATCH, keep_frames=self.images is not None)
        while True:
            t = time.perf_counter()
            batch = next(batches, None)
            t_decode += time.perf_counter() - t
            if batch is None:
                break
            t = time.perf_counter()
            n = batch.start + len(batch)
            recent.update(enumerate(batch.frames, start=batch.start))
            times.extend(batch.times)
            keep, _ = selector.push(batch.luma)
            kept = (np.flatnonzero(keep) + batch.start).tolist()
            changed.extend(i for i in kept if i > 0)
            new_cuts = detector.push(batch.start, batch.yuv, batch.times)
            for index in kept + new_cuts:
                images.add(index, recent[index])
            cuts += new_cuts
            for old in [i for i in recent if i < n - detector.lookahead - 1]:
                del recent[old]
            t_analyze += time.perf_counter() - t
        t = time.perf_counter()
        for cut in detector.finish(n):
            cuts.append(cut)
            images.add(cut, recent[cut])
        recent.clear()
        if given is not None:  # released scenes, numbered as released; frames between them are in no shot
            ranges = given.shots(n)
        else:
            bounds = [0, *sorted(set(cuts)), n]
            spans = [(s, e) for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e > s]
            ranges = [(number, s, e) for number, (s, e) in enumerate(spans, start=1)]
        end = times[-1] + float(1 / decoder.info.fps) if n else 0.0  # the last frame lasts one nominal frame

        def at(i: int) -> float:
            return times[i] if i < n else end

        shots = [Shot(s, e, shot_keyframes(changed, s, e), k, start_time=at(s), end_time=at(e)) for k, s, e in ranges]
        wanted = {k for shot in shots for k in shot.keyframes}
        t_analyze += time.perf_counter() - t
        t = time.perf_counter()
        encoded = images.finish()
        timings.update(decode=t_decode, analyze=t_analyze, encode=images.seconds, encode_wait=time.perf_counter() - t)
        return shots, {k: v for k, v in encoded.items() if k in wanted}, n
