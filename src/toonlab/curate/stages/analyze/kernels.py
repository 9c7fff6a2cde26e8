"""Compiled analysis kernels (numba): the Sakuga SSIM and the shot features of a batch, each in one pass.

`consecutive_ssim` gives the same numbers as `keyframes.consecutive_ssim` (scikit-image's SSIM with a 7x7
uniform window) from exact integer window sums: the 7x7 sums of x, y, x^2, y^2 and xy of uint8 frames are
integers, so only the final SSIM formula rounds (float64). `shot_features` gives, for each HSV frame against
the one before it, the content value (mean absolute difference), the 256-bin colour histogram and its total
variation distance, with no temporary arrays. The NumPy/OpenCV versions in `keyframes.py` and `shots.py` stay
as the reference that tests and `benchmarks/curate_bench.py` compare these with.
"""

from __future__ import annotations

import numpy as np

from toonlab.extras import require

_WIN = 7
_NP = _WIN * _WIN
_COV_NORM = _NP / (_NP - 1)
_INV_NP = 1.0 / _NP
_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2

_compiled: dict[str, object] = {}


def _ssim_pairs(frames):  # (N, H, W) uint8 -> (N-1,) float64
    n, h, w = frames.shape
    oh, ow = h - _WIN + 1, w - _WIN + 1  # window centres in the interior (scikit-image crops 3 pixels)
    out = np.empty(n - 1)
    col = np.zeros((5, w), np.int64)  # sliding 7-row sums of x, y, xx, yy, xy, per column
    for k in range(n - 1):
        a, b = frames[k], frames[k + 1]
        col[:] = 0
        total = 0.0
        for r in range(h):
            for j in range(w):  # add row r, drop row r - 7
                x, y = np.int64(a[r, j]), np.int64(b[r, j])
                col[0, j] += x
                col[1, j] += y
                col[2, j] += x * x
                col[3, j] += y * y
                col[4, j] += x * y
                if r >= _WIN:
                    x, y = np.int64(a[r - _WIN, j]), np.int64(b[r - _WIN, j])
                    col[0, j] -= x
                    col[1, j] -= y
                    col[2, j] -= x * x
                    col[3, j] -= y * y
                    col[4, j] -= x * y
            if r < _WIN - 1:
                continue
            sx = sy = sxx = syy = sxy = 0
            for j in range(w):  # slide the window along the row
                sx += col[0, j]
                sy += col[1, j]
                sxx += col[2, j]
                syy += col[3, j]
                sxy += col[4, j]
                if j >= _WIN:
                    sx -= col[0, j - _WIN]
                    sy -= col[1, j - _WIN]
                    sxx -= col[2, j - _WIN]
                    syy -= col[3, j - _WIN]
                    sxy -= col[4, j - _WIN]
                if j < _WIN - 1:
                    continue
                ux, uy = sx * _INV_NP, sy * _INV_NP
                vx = (sxx * _INV_NP - ux * ux) * _COV_NORM
                vy = (syy * _INV_NP - uy * uy) * _COV_NORM
                vxy = (sxy * _INV_NP - ux * uy) * _COV_NORM
                num = (2 * ux * uy + _C1) * (2 * vxy + _C2)
                den = (ux * ux + uy * uy + _C1) * (vx + vy + _C2)
                total += num / den
        out[k] = total / (oh * ow)
    return out


def _features(hsv, first, first_hist, lut, delta, hist, hist_delta):
    """hsv (B, H, W, 3) uint8; first (H, W, 3) and first_hist (256,) the frame before hsv[0]; lut (256, 3)
    the histogram code parts. Fills delta (B,), hist (B, 256) float64 (sums to 1) and hist_delta (B,)."""
    b, h, w, _ = hsv.shape
    pixels = h * w
    counts = np.zeros(256, np.int64)
    for k in range(b):
        prev = first if k == 0 else hsv[k - 1]
        cur = hsv[k]
        diff = 0
        counts[:] = 0
        for i in range(h):
            for j in range(w):
                code = 0
                for c in range(3):
                    v, p = np.int64(cur[i, j, c]), np.int64(prev[i, j, c])
                    diff += v - p if v > p else p - v
                    code += lut[v, c]
                counts[code] += 1
        delta[k] = diff / (pixels * 3)
        tv = 0.0
        for m in range(256):
            hist[k, m] = counts[m] / pixels
            before = first_hist[m] if k == 0 else hist[k - 1, m]
            tv += abs(hist[k, m] - before)
        hist_delta[k] = 0.5 * tv


def _jit(name: str, fn):
    if name not in _compiled:
        numba = require("numba")
        _compiled[name] = numba.njit(cache=True, nogil=True)(fn)
    return _compiled[name]


def consecutive_ssim(frames: np.ndarray) -> np.ndarray:
    """SSIM of each frame with the next: (N, H, W) uint8 -> (N-1,) float64 (scikit-image defaults, 7x7)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if len(frames) < 2:
        return np.empty(0)
    return _jit("ssim", _ssim_pairs)(frames)


def shot_features(
    hsv: np.ndarray, first: np.ndarray, first_hist: np.ndarray, lut: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, H, W, 3) uint8 HSV -> content delta (B,), histograms (B, 256) and histogram deltas (B,), each
    against the frame before (`first`/`first_hist` for hsv[0]); `lut` (256, 3) maps H, S, V to code parts."""
    b = len(hsv)
    delta, hist_delta = np.empty(b), np.empty(b)
    hist = np.empty((b, 256))
    _jit("features", _features)(
        np.ascontiguousarray(hsv), np.ascontiguousarray(first), first_hist, lut, delta, hist, hist_delta
    )
    return delta, hist, hist_delta


def warm_up() -> None:
    """Compile both kernels (or load them from numba's on-disk cache) on tiny inputs."""
    frames = np.zeros((2, 8, 8), np.uint8)
    consecutive_ssim(frames)
    hsv = np.zeros((1, 8, 8, 3), np.uint8)
    shot_features(hsv, hsv[0], np.zeros(256), np.zeros((256, 3), np.int64))
