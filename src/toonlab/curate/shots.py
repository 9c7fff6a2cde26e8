"""Shot boundaries tuned for cel animation, on the decoder's 64x64 YUV analysis frames.

Two detectors share one streaming contract (`ShotDetector`): `push(index, yuv)` returns the cuts it has
confirmed so far, `finish(n_frames)` returns the rest. A cut is the first frame of a new shot.

`AnimationShotDetector` is PySceneDetect's adaptive content rule (HSV content delta compared with its
neighbours) with three changes that matter for animation:
  * held frames (a drawing repeated on twos/threes gives zero deltas) are left out of the neighbour average,
    so a new drawing after a hold is not mistaken for a cut;
  * impact/flash frames: a jump that comes back within `flash_frames` frames (the frame before the jump
    matches a frame shortly after it) is not a cut;
  * each confirmed cut must also change the colour histogram, which fast pans and camera shake keep.
`PySceneDetectAdaptive` runs the library's AdaptiveDetector on the same frames, as a baseline.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from toonlab.extras import require


class ShotDetector(Protocol):
    lookahead: int  # frames after a cut that must be seen before it is confirmed

    def push(self, index: int, yuv: np.ndarray) -> list[int]: ...

    def finish(self, n_frames: int) -> list[int]: ...


def _hsv(yuv: np.ndarray) -> np.ndarray:
    cv2 = require("cv2")
    bgr = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).astype(np.int16)  # (64, 64, 3)


def _content(a: np.ndarray, b: np.ndarray) -> float:
    """PySceneDetect's content value: mean absolute HSV difference, channels weighted equally."""
    return float(np.abs(a - b).mean())


def _histogram(hsv: np.ndarray) -> np.ndarray:
    cv2 = require("cv2")
    hist = cv2.calcHist([hsv.astype(np.uint8)], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
    return (hist / hist.sum()).ravel()


def _hist_distance(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())  # total variation, 0 (same colours) .. 1 (disjoint)


@dataclass(frozen=True)
class _Frame:
    hsv: np.ndarray
    hist: np.ndarray
    delta: float  # content value against the previous frame
    hist_delta: float


class AnimationShotDetector:
    """Adaptive content cuts that ignore holds, impact frames and pans. Parameters in HSV content units."""

    def __init__(
        self,
        min_scene_len: int = 18,
        adaptive_threshold: float = 3.0,
        min_content_val: float = 15.0,
        window: int = 2,
        flash_frames: int = 3,
        hold_delta: float = 1.0,
        min_hist_delta: float = 0.15,
    ) -> None:
        self.min_scene_len = min_scene_len
        self.adaptive_threshold = adaptive_threshold
        self.min_content_val = min_content_val
        self.window = window
        self.flash_frames = flash_frames
        self.hold_delta = hold_delta
        self.min_hist_delta = min_hist_delta
        self.lookahead = max(window, flash_frames)
        self._recent: deque[tuple[int, _Frame]] = deque(maxlen=2 * self.lookahead + 3)
        self._last_cut = 0
        self._prev: _Frame | None = None

    def push(self, index: int, yuv: np.ndarray) -> list[int]:
        hsv = _hsv(yuv)
        hist = _histogram(hsv)
        prev = self._prev
        frame = _Frame(
            hsv=hsv,
            hist=hist,
            delta=_content(prev.hsv, hsv) if prev else 0.0,
            hist_delta=_hist_distance(prev.hist, hist) if prev else 0.0,
        )
        self._prev = frame
        self._recent.append((index, frame))
        return self._decide(index - self.lookahead)

    def finish(self, n_frames: int) -> list[int]:
        return [c for t in range(max(1, n_frames - self.lookahead), n_frames) for c in self._decide(t)]

    def _decide(self, t: int) -> list[int]:
        if t < 1 or t - self._last_cut < self.min_scene_len:
            return []
        frames = dict(self._recent)
        if t not in frames or t - 1 not in frames:
            return []
        cur = frames[t]
        if cur.delta < self.min_content_val or cur.hist_delta < self.min_hist_delta:
            return []
        around = [
            frames[j].delta
            for j in range(t - self.window, t + self.window + 1)
            if j != t and j >= 1 and j in frames and frames[j].delta > self.hold_delta
        ]
        baseline = float(np.mean(around)) if around else self.hold_delta
        if cur.delta / baseline < self.adaptive_threshold:
            return []
        if self._is_impact(frames, t, 0.5 * cur.delta):
            return []
        self._last_cut = t
        return [t]

    def _is_impact(self, frames: dict[int, _Frame], t: int, small: float) -> bool:
        """True when the picture comes back across the jump at t: some frame up to `flash_frames` before it
        matches some frame after it, no more than `flash_frames + 1` apart (flash or impact frames between)."""
        k = self.flash_frames
        for b in range(t - 1, t - 2 - k, -1):
            for a in range(t, b + k + 2):
                if a - b >= 2 and b in frames and a in frames and _content(frames[b].hsv, frames[a].hsv) < small:
                    return True
        return False


class PySceneDetectAdaptive:
    """PySceneDetect's AdaptiveDetector fed our analysis frames (Sakuga-42M settings by default)."""

    def __init__(self, min_scene_len: int = 18, adaptive_threshold: float = 3.0, min_content_val: float = 30.0) -> None:
        detectors = require("scenedetect.detectors")
        self._common = require("scenedetect.common")
        self.min_scene_len = min_scene_len
        self._det = detectors.AdaptiveDetector(
            adaptive_threshold=adaptive_threshold,
            min_scene_len=min_scene_len,
            min_content_val=min_content_val,
        )
        self.lookahead = self._det.window_width
        self._fps = 24.0

    def push(self, index: int, yuv: np.ndarray) -> list[int]:
        cv2 = require("cv2")
        timecode = self._common.FrameTimecode(index, fps=self._fps)
        cuts = self._det.process_frame(timecode, cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR))
        return [c.frame_num for c in cuts]

    def finish(self, n_frames: int) -> list[int]:
        timecode = self._common.FrameTimecode(max(0, n_frames - 1), fps=self._fps)
        return [c.frame_num for c in self._det.post_process(timecode)]


def make_detector(name: str, min_scene_len: int) -> ShotDetector:
    if name == "animation":
        return AnimationShotDetector(min_scene_len=min_scene_len)
    if name == "pyscenedetect":
        return PySceneDetectAdaptive(min_scene_len=min_scene_len)
    raise ValueError(f"unknown shot detector {name!r}: choose 'animation' or 'pyscenedetect'")
