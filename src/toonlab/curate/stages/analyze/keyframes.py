"""Unique drawings ("keyframes") by the Sakuga-42M rule, the dynamic score and a timing label.

Rule (Sakuga-42M `detect_keyframes.py`): frame 0 of a shot is kept; every later frame t is compared with the
immediately preceding frame t-1 (kept or not), both 64x64 luma, by SSIM with a 7x7 uniform window (scikit-image
defaults: sample covariance, K1=0.01, K2=0.03, data range 255, 3-pixel border cropped); t is kept if SSIM < 0.95.

`consecutive_ssim` reproduces `skimage.metrics.structural_similarity(a, b, win_size=7, data_range=255)` for every
pair of neighbouring frames of a batch at once, with OpenCV box filters in float32 arithmetic (tests assert agreement
with scikit-image's float64 result to 1e-6, far below the changes between drawings or from codec noise).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np

from toonlab.extras import require

WIN = 7
_PAD = (WIN - 1) // 2
_NP = WIN * WIN
_COV_NORM = _NP / (_NP - 1)
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2
DTYPE = np.float32

TIMING_LABELS = ("ones", "twos", "threes", "mixed", "still")


def _box(frames: np.ndarray) -> np.ndarray:
    """7x7 mean filter of each frame of (N, H, W) float64, in one OpenCV call on the frames stacked as one tall
    image. Rows near a frame's top and bottom edge then mix with the neighbouring frame, but only the interior
    (3-pixel border cropped, as scikit-image does) is used, and its windows never leave their frame."""
    cv2 = require("cv2")
    n, h, w = frames.shape
    tall = cv2.boxFilter(frames.reshape(n * h, w), -1, (WIN, WIN), borderType=cv2.BORDER_REFLECT_101)
    return tall.reshape(n, h, w)


def consecutive_ssim(frames: np.ndarray) -> np.ndarray:
    """SSIM of each frame with the next: (N, H, W) uint8 -> (N-1,) float64, scikit-image's defaults.

    Written with in-place operations: fresh arrays of this size come from mmap and page faults cost more than
    the arithmetic."""
    x = frames.astype(DTYPE)  # (N, H, W)
    mean = _box(x)  # local means, (N, H, W)
    var = _box(np.square(x))  # local E[x^2] -> variance below
    cov = _box(np.multiply(x[:-1], x[1:], out=x[:-1]))  # E[xy] -> covariance below, (N-1, H, W)
    mean_sq = np.square(mean)
    var -= mean_sq
    var *= _COV_NORM
    mean_ab = np.multiply(mean[:-1], mean[1:])
    cov -= mean_ab
    cov *= 2 * _COV_NORM
    cov += _C2  # 2 cov + C2
    mean_ab *= 2
    mean_ab += _C1  # 2 mu_a mu_b + C1
    mean_ab *= cov  # numerator
    den = np.add(mean_sq[:-1], mean_sq[1:])
    den += _C1
    var_sum = np.add(var[:-1], var[1:], out=cov)
    var_sum += _C2
    den *= var_sum
    mean_ab /= den  # SSIM map, (N-1, H, W)
    return mean_ab[:, _PAD:-_PAD, _PAD:-_PAD].mean(axis=(1, 2), dtype=np.float64)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equal-size grey images (uint8), scikit-image defaults with a 7x7 window."""
    return float(consecutive_ssim(np.stack([a, b]))[0])


def _fused_ssim(frames: np.ndarray) -> np.ndarray:
    from toonlab.curate.stages.analyze.kernels import consecutive_ssim as compiled

    return compiled(frames)


class KeyframeSelector:
    """Streaming Sakuga rule over batches of consecutive 64x64 luma frames.

    `push(luma)` with luma (B, 64, 64) returns keep (B,) bool and the SSIM of each frame to its predecessor
    (B,) (NaN for the very first frame, which is kept). Shot starts are forced by `shot_keyframes`.
    """

    def __init__(self, threshold: float = 0.95, kernels: str = "fast") -> None:
        """`kernels`: "fast" (compiled, exact integer window sums) or "reference" (OpenCV box filters)."""
        self.threshold = threshold
        self._ssim = consecutive_ssim if kernels == "reference" else _fused_ssim
        self._last: np.ndarray | None = None  # (64, 64) uint8, last frame of the previous batch

    def push(self, luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first = self._last is None
        frames = luma if first else np.concatenate([self._last[None], luma])
        self._last = luma[-1]
        scores = self._ssim(frames) if len(frames) > 1 else np.empty(0)
        if first:
            scores = np.concatenate([[np.nan], scores])
        keep = scores < self.threshold
        if first:
            keep[0] = True
        return keep, scores


def shot_keyframes(changed: Sequence[int], start: int, end: int) -> tuple[int, ...]:
    """Keyframes of shot [start, end): its first frame plus every frame whose SSIM to its predecessor fell.

    `changed` is the sorted list of absolute frame numbers that passed the rule against their predecessor.
    Binary search on the list itself (`np.searchsorted` would convert the whole list on every call: quadratic
    in the video's length over its shots, 0.22 s of a 20,000-frame run's serial tail).
    """
    lo = bisect.bisect_right(changed, start)
    hi = bisect.bisect_left(changed, end)
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
