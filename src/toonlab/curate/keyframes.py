"""Unique drawings ("keyframes") by the Sakuga-42M rule, the dynamic score and a timing label.

Rule (Sakuga-42M `detect_keyframes.py`): frame 0 of a shot is kept; every later frame t is compared with the
immediately preceding frame t-1 (kept or not), both 64x64 luma, by SSIM with a 7x7 uniform window (scikit-image
defaults: sample covariance, K1=0.01, K2=0.03, data range 255, 3-pixel border cropped); t is kept if SSIM < 0.95.

`ssim` below reproduces `skimage.metrics.structural_similarity(a, b, win_size=7, data_range=255)` with OpenCV
box filters and reuses each frame's local means between its two comparisons (tests assert agreement to 1e-9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toonlab.extras import require

WIN = 7
_PAD = (WIN - 1) // 2
_NP = WIN * WIN
_COV_NORM = _NP / (_NP - 1)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2

TIMING_LABELS = ("ones", "twos", "threes", "mixed", "still")


@dataclass(frozen=True)
class _Moments:
    x: np.ndarray  # (H, W) float64
    mean: np.ndarray  # local mean, (H, W)
    var: np.ndarray  # local sample variance, (H, W)


def _box(img: np.ndarray) -> np.ndarray:
    cv2 = require("cv2")
    return cv2.boxFilter(img, cv2.CV_64F, (WIN, WIN), normalize=True, borderType=cv2.BORDER_REFLECT_101)


def _moments(img: np.ndarray) -> _Moments:
    x = img.astype(np.float64)
    mean = _box(x)
    var = _COV_NORM * (_box(x * x) - mean * mean)
    return _Moments(x, mean, var)


def _ssim_from(a: _Moments, b: _Moments) -> float:
    cov = _COV_NORM * (_box(a.x * b.x) - a.mean * b.mean)
    num = (2 * a.mean * b.mean + _C1) * (2 * cov + _C2)
    den = (a.mean**2 + b.mean**2 + _C1) * (a.var + b.var + _C2)
    s = num / den
    return float(s[_PAD:-_PAD, _PAD:-_PAD].mean())


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equal-size grey images (uint8), scikit-image defaults with a 7x7 window."""
    return _ssim_from(_moments(a), _moments(b))


class KeyframeSelector:
    """Streaming Sakuga rule over consecutive 64x64 luma frames.

    `push(luma)` returns (keep, ssim_to_previous); the first frame pushed has no previous and is kept.
    Shot starts are forced to be kept by the caller (see `shot_keyframes`).
    """

    def __init__(self, threshold: float = 0.95) -> None:
        self.threshold = threshold
        self._prev: _Moments | None = None

    def push(self, luma: np.ndarray) -> tuple[bool, float]:
        cur = _moments(luma)
        prev, self._prev = self._prev, cur
        if prev is None:
            return True, float("nan")
        score = _ssim_from(prev, cur)
        return score < self.threshold, score


def shot_keyframes(changed: Sequence[int], start: int, end: int) -> tuple[int, ...]:
    """Keyframes of shot [start, end): its first frame plus every frame whose SSIM to its predecessor fell.

    `changed` is the sorted list of absolute frame numbers that passed the rule against their predecessor.
    """
    lo = np.searchsorted(changed, start, side="right")
    hi = np.searchsorted(changed, end, side="left")
    return (start, *(int(i) for i in changed[lo:hi]))


def dynamic_score(key_frame_number: int, frame_number: int) -> float:
    return key_frame_number / frame_number if frame_number else 0.0


def timing_label(keyframes: Sequence[int], end: int, dominant: float = 0.6) -> str:
    """Classify a shot's animation timing from how long each drawing is held.

    still: one drawing for the whole shot. ones / twos / threes: holds of 1 / 2 / 3 frames cover at least
    `dominant` of the shot's frames. mixed: anything else (changing timing, or drawings held 4+ frames).
    The final hold is cut short by the shot end, so it is left out when other holds exist.
    """
    if len(keyframes) <= 1:
        return "still"
    holds = np.diff(np.asarray([*keyframes, end]))[:-1]  # last hold is truncated by the cut
    total = holds.sum()
    for length, label in ((1, "ones"), (2, "twos"), (3, "threes")):
        if holds[holds == length].sum() >= dominant * total:
            return label
    return "mixed"
