"""Shot boundaries tuned for cel animation, on the decoder's 64x64 YUV analysis frames.

Two detectors share one streaming contract (`ShotDetector`): `push(start, yuv)` takes a batch of consecutive
frames and returns the cuts confirmed so far, `finish(n_frames)` returns the rest. A cut is the first frame of a
new shot.

`AnimationShotDetector` is PySceneDetect's adaptive content rule (HSV content delta compared with its
neighbours) with three changes that matter for animation:
  * held frames (a drawing repeated on twos/threes gives zero deltas) are left out of the neighbour average,
    so a new drawing after a hold is not mistaken for a cut;
  * impact/flash frames: a jump that comes back within `flash_frames` frames (a frame before the jump
    matches a frame shortly after it) is not a cut;
  * each confirmed cut must also change the colour histogram, which fast pans and camera shake keep.
Lengths given in frames (`min_scene_len`, `flash_frames`) mean frames at `REFERENCE_FPS` when the stream has
fewer frames per second (a 2 fps slideshow or a variable-rate stream): a scene may also end once it has lasted
`min_scene_len / REFERENCE_FPS` seconds, frames further apart than `(flash_frames + 1) / REFERENCE_FPS`
seconds are never one impact, and the adaptive neighbours are those within `window / REFERENCE_FPS` seconds.
At REFERENCE_FPS and above the frame counts decide alone, as before.
Features are computed for a whole batch with a few array operations; the decision runs per frame on scalars.
`PySceneDetectAdaptive` runs the library's AdaptiveDetector on the same frames, as a baseline.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from fractions import Fraction
from typing import Protocol

import numpy as np

from toonlab.extras import require


class ShotDetector(Protocol):
    lookahead: int  # frames after a cut that must be seen before it is confirmed

    def push(self, start: int, yuv: np.ndarray, times: np.ndarray | None = None) -> list[int]:
        """Feed frames [start, start + B) as (B, 64, 64, 3) uint8 YUV, with their times in seconds (B,) when
        known; return the cuts confirmed so far."""
        ...

    def finish(self, n_frames: int) -> list[int]: ...


REFERENCE_FPS = 24  # the frame rate that frame-count settings are meant at (Sakuga-42M's animation rate)
_LEVELS = np.arange(256)
# one uint8 code per pixel: hue bin * 16 + saturation bin * 4 + value bin (OpenCV hue runs 0..179)
_BIN_LUT = np.stack([np.minimum(_LEVELS * 16 // 180, 15) * 16, _LEVELS // 64 * 4, _LEVELS // 64], axis=-1).astype(
    np.uint8
)[:, None, :]  # (256, 1, 3) for cv2.LUT
_CODE_PARTS = np.ascontiguousarray(_BIN_LUT[:, 0, :].T)  # (3, 256) uint8 for the compiled kernel


def _hsv(yuv: np.ndarray) -> np.ndarray:
    """(B, 64, 64, 3) uint8 YUV -> uint8 HSV, converted as one tall image."""
    cv2 = require("cv2")
    b, h, w, _ = yuv.shape
    bgr = cv2.cvtColor(yuv.reshape(b * h, w, 3), cv2.COLOR_YUV2BGR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV).reshape(b, h, w, 3)


def _content(a: np.ndarray, b: np.ndarray) -> float:
    """PySceneDetect's content value: mean absolute HSV difference, channels weighted equally."""
    return float(require("cv2").absdiff(a, b).mean())


def reference_features(
    hsv: np.ndarray, first: np.ndarray, first_hist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Content values (B,), histograms (B, 256) and histogram distances (B,) of each HSV frame against the one
    before it (`first`, `first_hist` for hsv[0]), with NumPy/OpenCV; `kernels.shot_features` is the fast twin."""
    hist = _histograms(hsv)  # (B, 256)
    prev_hsv = np.concatenate([first[None], hsv[:-1]])
    prev_hist = np.concatenate([first_hist[None], hist[:-1]])
    delta = require("cv2").absdiff(hsv, prev_hsv).mean(axis=(1, 2, 3))  # (B,)
    return delta, hist, 0.5 * np.abs(hist - prev_hist).sum(axis=1)


def fused_features(
    hsv: np.ndarray, first: np.ndarray, first_hist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`reference_features` in one compiled pass over the batch (numba)."""
    from toonlab.curate.stages.analyze.kernels import shot_features

    return shot_features(hsv, first, first_hist, _CODE_PARTS)


FEATURES = {"fast": fused_features, "reference": reference_features}


def _histograms(hsv: np.ndarray) -> np.ndarray:
    """(B, 64, 64, 3) HSV -> (B, 256) colour histograms (16 hue x 4 saturation x 4 value bins), summing to 1."""
    cv2 = require("cv2")
    b, h, w, _ = hsv.shape
    parts = cv2.LUT(hsv.reshape(b * h, w, 3), _BIN_LUT).reshape(b, h * w, 3)
    codes = parts[..., 0] + parts[..., 1] + parts[..., 2]  # (B, 64 * 64) uint8, max 15 * 16 + 12 + 3 = 255
    counts = np.stack([np.bincount(c, minlength=256) for c in codes])  # (B, 256)
    return counts / (h * w)


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
        features=fused_features,
    ) -> None:
        self._features = features  # reference_features or fused_features: same numbers
        self.min_scene_len = min_scene_len
        self.adaptive_threshold = adaptive_threshold
        self.min_content_val = min_content_val
        self.window = window
        self.flash_frames = flash_frames
        self.hold_delta = hold_delta
        self.min_hist_delta = min_hist_delta
        self.lookahead = max(window, flash_frames)
        # the next push decides from its first frame - lookahead on, looking back window or flash_frames + 2
        self._history = self.lookahead + max(window, flash_frames + 2) + 1
        self._delta: dict[int, float] = {}  # content value against the previous frame
        self._hist_delta: dict[int, float] = {}  # histogram distance (total variation) to the previous frame
        self._hsv: dict[int, np.ndarray] = {}  # (64, 64, 3) uint8
        self._time: dict[int, float] = {}  # seconds, when the stream's times are given
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # HSV and histogram of the newest frame
        self._last_cut = 0
        self._last_cut_time = 0.0

    def push(self, start: int, yuv: np.ndarray, times: np.ndarray | None = None) -> list[int]:
        hsv = _hsv(yuv)  # (B, 64, 64, 3)
        if self._last is None:
            self._last = (hsv[0], _histograms(hsv[:1])[0])
        delta, hist, hist_delta = self._features(hsv, *self._last)  # (B,), (B, 256), (B,)
        self._last = (hsv[-1], hist[-1])
        for i in range(len(hsv)):
            self._delta[start + i] = float(delta[i])
            self._hist_delta[start + i] = float(hist_delta[i])
            self._hsv[start + i] = hsv[i]
            if times is not None:
                self._time[start + i] = float(times[i])
        end = start + len(hsv)
        cuts = [c for t in range(start - self.lookahead, end - self.lookahead) for c in self._decide(t)]
        for old in [k for k in self._hsv if k < end - self._history]:
            del self._hsv[old], self._delta[old], self._hist_delta[old]
            self._time.pop(old, None)
        return cuts

    def finish(self, n_frames: int) -> list[int]:
        return [c for t in range(max(1, n_frames - self.lookahead), n_frames) for c in self._decide(t)]

    def _decide(self, t: int) -> list[int]:
        if t < 1 or t - 1 not in self._delta or not self._long_enough(t):
            return []
        delta = self._delta[t]
        if delta < self.min_content_val or self._hist_delta[t] < self.min_hist_delta:
            return []
        around = [
            self._delta[j]
            for j in range(t - self.window, t + self.window + 1)
            if j != t and j >= 1 and self._delta.get(j, 0.0) > self.hold_delta and self._near(j, t, self.window)
        ]
        baseline = float(np.mean(around)) if around else self.hold_delta
        if delta / baseline < self.adaptive_threshold or self._is_impact(t, 0.5 * delta):
            return []
        self._last_cut = t
        self._last_cut_time = self._time.get(t, 0.0)
        return [t]

    def _long_enough(self, t: int) -> bool:
        """The scene since the last cut has `min_scene_len` frames, or lasts as long as that many frames at
        REFERENCE_FPS (low or variable frame rates)."""
        if t - self._last_cut >= self.min_scene_len:
            return True
        return t in self._time and self._time[t] - self._last_cut_time >= self.min_scene_len / REFERENCE_FPS - 1e-9

    def _near(self, a: int, b: int, frames: int) -> bool:
        """Frames a and b are at most `frames` frames at REFERENCE_FPS apart in time (always true without times)."""
        if a not in self._time or b not in self._time:
            return True
        return abs(self._time[a] - self._time[b]) <= frames / REFERENCE_FPS + 1e-9

    def _is_impact(self, t: int, small: float) -> bool:
        """True when the picture comes back across the jump at t: some frame up to `flash_frames` before it
        matches some frame after it, no more than `flash_frames + 1` apart (flash or impact frames between)."""
        k, hsv = self.flash_frames, self._hsv
        for b in range(t - 1, t - 2 - k, -1):
            for a in range(t, b + k + 2):
                if a - b < 2 or b not in hsv or a not in hsv or not self._near(b, a, self.flash_frames + 1):
                    continue
                if _content(hsv[b], hsv[a]) < small:
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

    def push(self, start: int, yuv: np.ndarray, times: np.ndarray | None = None) -> list[int]:
        cv2 = require("cv2")
        cuts = []
        for i, frame in enumerate(yuv):
            timecode = self._common.FrameTimecode(start + i, fps=self._fps)
            cuts += self._det.process_frame(timecode, cv2.cvtColor(frame, cv2.COLOR_YUV2BGR))
        return [c.frame_num for c in cuts]

    def finish(self, n_frames: int) -> list[int]:
        timecode = self._common.FrameTimecode(max(0, n_frames - 1), fps=self._fps)
        return [c.frame_num for c in self._det.post_process(timecode)]


class GivenShots:
    """Released shot ranges in place of detection (Sakuga-42M parquet rows), on the same streaming contract.

    `scenes` holds (scene number, start seconds, end seconds); each is turned into frames [start, end) at the
    stream's frame rate `fps` (the parquet's own fps column can be wrong), rounding to the nearest frame, as
    PySceneDetect turns a timecode into a frame number. `push` reports each scene start as a cut, so the
    analysis pass keeps the scene's first frame; `shots(n_frames)` gives (number, start, end) for the scenes
    inside the decoded frames, ends clipped to the stream. Frames between released scenes belong to no shot.
    """

    lookahead = 0

    def __init__(self, scenes: Sequence[tuple[int, float, float]], fps: Fraction) -> None:
        self.ranges = sorted(
            ((int(number), _frame(start, fps), _frame(end, fps)) for number, start, end in scenes),
            key=lambda r: (r[1], r[0]),
        )
        self._starts = sorted({start for _, start, end in self.ranges if end > start})

    def push(self, start: int, yuv: np.ndarray, times: np.ndarray | None = None) -> list[int]:
        lo, hi = bisect_left(self._starts, start), bisect_left(self._starts, start + len(yuv))
        return self._starts[lo:hi]

    def finish(self, n_frames: int) -> list[int]:
        return []

    def shots(self, n_frames: int) -> list[tuple[int, int, int]]:
        return [(k, s, min(e, n_frames)) for k, s, e in self.ranges if s < min(e, n_frames)]


def _frame(seconds: float, fps: Fraction) -> int:
    """Nearest frame number to a time in seconds (exact rational arithmetic on the decimal value; halves up)."""
    return math.floor(Fraction(str(seconds)) * fps + Fraction(1, 2))


def make_detector(name: str, min_scene_len: int, kernels: str = "fast") -> ShotDetector:
    """`kernels`: "fast" (compiled features) or "reference" (NumPy/OpenCV); both give the same cuts."""
    if name == "animation":
        return AnimationShotDetector(min_scene_len=min_scene_len, features=FEATURES[kernels])
    if name == "pyscenedetect":
        return PySceneDetectAdaptive(min_scene_len=min_scene_len)
    raise ValueError(f"unknown shot detector {name!r}: choose 'animation' or 'pyscenedetect'")
