"""Compiled analysis kernels (numba): the Sakuga SSIM and the shot features of a batch.

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
# the SSIM mean may be summed in any order (vectorised), and multiply-adds fused: a few ulps, no more
_SSIM_FASTMATH = frozenset({"reassoc", "contract"})


def _box_sums(a, b, col, out):  # a, b (H, W) uint8, col (W,) int32 scratch -> out (H-6, W-6) int32: 7x7 sums of a*b
    """Sliding 7-row column sums, then seven of them added per window: every inner loop runs along a row with no
    carried dependency, so it is vectorised (a sliding sum along the row would not be)."""
    h, w = a.shape
    col[:] = 0
    for r in range(_WIN - 1):
        for j in range(w):
            col[j] += np.int32(a[r, j]) * np.int32(b[r, j])
    for r in range(h - _WIN + 1):
        top = r + _WIN - 1
        for j in range(w):  # add row r + 6
            col[j] += np.int32(a[top, j]) * np.int32(b[top, j])
        for j in range(w - _WIN + 1):
            out[r, j] = col[j] + col[j + 1] + col[j + 2] + col[j + 3] + col[j + 4] + col[j + 5] + col[j + 6]
        for j in range(w):  # drop row r
            col[j] -= np.int32(a[r, j]) * np.int32(b[r, j])


def _ssim_pairs(frames):  # (N, H, W) uint8 -> (N-1,) float64
    """Window sums of x and x^2 are made once per frame (each frame is in two pairs), of xy once per pair;
    all are exact int32 (at most 49 * 255^2), so only the SSIM formula rounds (float64). The mean over the map
    is summed in whatever order vectorises (compiled with `reassoc`): a few ulps from scikit-image's order."""
    n, h, w = frames.shape
    oh, ow = h - _WIN + 1, w - _WIN + 1  # window centres in the interior (scikit-image crops 3 pixels)
    sums = np.empty((n, oh, ow), np.int32)
    squares = np.empty((n, oh, ow), np.int32)
    cross = np.empty((oh, ow), np.int32)
    col = np.empty(w, np.int32)
    ones = np.ones((h, w), np.uint8)  # window sums of x are those of x * 1
    for k in range(n):
        _box_sums(frames[k], ones, col, sums[k])
        _box_sums(frames[k], frames[k], col, squares[k])
    out = np.empty(n - 1)
    for k in range(n - 1):
        _box_sums(frames[k], frames[k + 1], col, cross)
        total = 0.0
        for r in range(oh):
            for j in range(ow):
                ux, uy = sums[k, r, j] * _INV_NP, sums[k + 1, r, j] * _INV_NP
                vx = (squares[k, r, j] * _INV_NP - ux * ux) * _COV_NORM
                vy = (squares[k + 1, r, j] * _INV_NP - uy * uy) * _COV_NORM
                vxy = (cross[r, j] * _INV_NP - ux * uy) * _COV_NORM
                num = (2 * ux * uy + _C1) * (2 * vxy + _C2)
                den = (ux * ux + uy * uy + _C1) * (vx + vy + _C2)
                total += num / den
        out[k] = total / (oh * ow)
    return out


def _features(hsv, first, first_hist, lut, delta, hist, hist_delta):
    """hsv (B, H, W, 3) uint8; first (H, W, 3) and first_hist (256,) the frame before hsv[0]; lut (3, 256)
    uint8 the histogram code parts of H, S and V. Fills delta (B,), hist (B, 256) float64 (sums to 1) and
    hist_delta (B,).
    The absolute differences (vectorised) and the histogram (a scatter, which is not) are separate loops."""
    b, h, w, _ = hsv.shape
    pixels, values = h * w, h * w * 3
    counts = np.zeros(256, np.int64)
    flat = hsv.reshape(b, values)  # (B, H * W * 3): pixel by pixel, H S V
    before = first.reshape(values)
    hue, sat, val = lut[0], lut[1], lut[2]  # (256,) each
    for k in range(b):
        prev = before if k == 0 else flat[k - 1]
        cur = flat[k]
        diff = 0
        for i in range(values):
            diff += abs(np.int32(cur[i]) - np.int32(prev[i]))
        counts[:] = 0
        for i in range(0, values, 3):
            counts[hue[cur[i]] + sat[cur[i + 1]] + val[cur[i + 2]]] += 1
        delta[k] = diff / values
        tv = 0.0
        for m in range(256):
            hist[k, m] = counts[m] / pixels
            before_m = first_hist[m] if k == 0 else hist[k - 1, m]
            tv += abs(hist[k, m] - before_m)
        hist_delta[k] = 0.5 * tv


def _jit(name: str, fn, helpers: tuple = (), fastmath: frozenset = frozenset()):
    """`fn` compiled (numba, cached on disk, releasing the GIL, with the `fastmath` flags given); `helpers` are
    the module-level functions it calls, compiled first so that `fn` calls their compiled versions."""
    if name not in _compiled:
        numba = require("numba")
        for helper in helpers:
            globals()[helper.__name__] = numba.njit(cache=True, nogil=True)(helper)
        _compiled[name] = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=set(fastmath))(fn)
    return _compiled[name]


def consecutive_ssim(frames: np.ndarray) -> np.ndarray:
    """SSIM of each frame with the next: (N, H, W) uint8 -> (N-1,) float64 (scikit-image defaults, 7x7)."""
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if len(frames) < 2:
        return np.empty(0)
    return _jit("ssim", _ssim_pairs, (_box_sums,), _SSIM_FASTMATH)(frames)


def shot_features(
    hsv: np.ndarray, first: np.ndarray, first_hist: np.ndarray, lut: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, H, W, 3) uint8 HSV -> content delta (B,), histograms (B, 256) and histogram deltas (B,), each
    against the frame before (`first`/`first_hist` for hsv[0]); `lut` (3, 256) uint8 maps H, S, V to code parts."""
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
    shot_features(hsv, hsv[0], np.zeros(256), np.zeros((3, 256), np.uint8))
