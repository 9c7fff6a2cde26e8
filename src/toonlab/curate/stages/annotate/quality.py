"""Technical quality of a shot: sharpness, compression blocking, resolution, black bars, black/blank frames.

Technical, not aesthetic: it says whether the pixels are clean, not whether the drawing is good (that is the
`aesthetic` annotator). Everything is measured with OpenCV on up to `frames` evenly spaced keyframes.

Per frame (on the grey image, after cropping the black bars):
- sharpness: variance of the Laplacian, on the frame scaled so its shorter side is at most 720 px (so 4K and SD
  frames are measured at comparable scale); score `s / (s + 100)` (100 is the usual blur threshold -> 0.5);
- blockiness: mean absolute luma step across the 8-pixel block boundaries of the stored keyframe divided by the mean
  step elsewhere (1.0 = no blocking; block-coded video at low bitrate gives 1.5-3); penalty `clip(ratio - 1, 0, 1)`.
  Measured on the keyframe images as stored, so their own JPEG coding (quality 90 by default) adds a little, and a
  keyframe scaled by `--max-side` no longer has the source's 8x8 grid;
- bars: rows (columns) at the top and bottom (left and right) whose luma stays below 24, as a fraction of the height
  (width); a bar must be present in every non-blank sampled frame to count;
- blank: a frame whose luma standard deviation is below 4 (a flat card of any colour); black: blank and mean luma
  below 24.

Columns: `quality_score` in [0, 1] = sharpness score x (1 - 0.5 x blocking penalty) x (0.5 + 0.5 x resolution score),
with resolution score `min(1, shorter side of the source / 720)`; the raw `sharpness` (median Laplacian variance) and
`blockiness` (median ratio); the flags `letterbox`, `pillarbox` (bar fractions), `black_frames`, `blank_frames`
(shares of sampled keyframes). Blank frames are left out of the sharpness and blocking medians (a shot of only blank
frames scores 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.extras import require

DARK = 24  # luma below this counts as black (video black is 16)
FLAT_STD = 4.0  # luma standard deviation below this: a blank frame


def bars(grey: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) counts of all-dark rows/columns at the frame edges of an (H, W) uint8 image."""
    rows = grey.max(axis=1) < DARK  # (H,)
    cols = grey.max(axis=0) < DARK  # (W,)

    def run(flags: np.ndarray) -> int:
        return int(np.argmin(flags)) if not flags.all() else len(flags)

    return run(rows), run(rows[::-1]), run(cols), run(cols[::-1])


def blockiness(grey: np.ndarray) -> float:
    """Ratio of the mean luma step across 8-pixel block boundaries to the mean step elsewhere (1.0 = none)."""
    grey = grey.astype(np.float32)
    ratios = []
    for steps in (np.abs(np.diff(grey, axis=1)), np.abs(np.diff(grey, axis=0)).T):  # (H, W-1) column steps
        if steps.shape[1] < 16:
            continue
        boundary = np.zeros(steps.shape[1], bool)
        boundary[7::8] = True  # step between pixel 8k+7 and 8k+8
        inside = steps[:, ~boundary].mean()
        if inside < 0.5:  # flat image: no texture to compare the boundaries with
            continue
        ratios.append(float(steps[:, boundary].mean() / inside))
    return float(np.mean(ratios)) if ratios else 1.0


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian on the frame scaled so its shorter side is at most 720 px."""
    cv2 = require("cv2")
    h, w = grey.shape
    scale = 720 / min(h, w)
    if scale < 1.0:
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class QualityAnnotator:
    """Technical quality score and flags from OpenCV measurements on sampled keyframes."""

    name = "quality"
    columns = (
        pa.field("quality_score", pa.float64()),
        pa.field("sharpness", pa.float64()),
        pa.field("blockiness", pa.float64()),
        pa.field("letterbox", pa.float64()),
        pa.field("pillarbox", pa.float64()),
        pa.field("black_frames", pa.float64()),
        pa.field("blank_frames", pa.float64()),
    )

    def __init__(self, frames: int = 8) -> None:
        if frames < 1:
            raise ValueError(f"quality.frames must be >= 1, got {frames}")
        self.frames = frames

    @property
    def model_id(self) -> str:
        return f"opencv-laplacian-blockiness-bars@{require('cv2').__version__}"

    def setup(self) -> None:
        require("cv2")

    def annotate(self, view: ShotView) -> dict[str, Any]:
        cv2 = require("cv2")
        images = view.images(evenly_spaced(view.n_keyframes, self.frames))
        greys = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in images]
        blank = [float(g.std()) < FLAT_STD for g in greys]
        black = [b and float(g.mean()) < DARK for g, b in zip(greys, blank, strict=True)]
        content = [g for g, b in zip(greys, blank, strict=True) if not b]
        result = {
            "letterbox": 0.0,
            "pillarbox": 0.0,
            "black_frames": float(np.mean(black)),
            "blank_frames": float(np.mean(blank)),
        }
        if not content:
            return {**result, "quality_score": 0.0, "sharpness": 0.0, "blockiness": 1.0}
        edges = np.array([bars(g) for g in content]).min(axis=0)  # a bar must be in every frame
        top, bottom, left, right = (int(e) for e in edges)
        h, w = content[0].shape
        if top + bottom >= h or left + right >= w:  # dark all over (a night scene), not bars
            top = bottom = left = right = 0
        result["letterbox"] = (top + bottom) / h
        result["pillarbox"] = (left + right) / w
        crops = [g[top : h - bottom, left : w - right] for g in content]
        sharp = float(np.median([sharpness(c) for c in crops]))
        # blocking is measured on the uncropped frames: the bars' edges need not sit on the 8x8 grid
        block = float(np.median([blockiness(g) for g in content]))
        probe = view.result.probe
        resolution = min(1.0, min(probe.width, probe.height) / 720)
        score = sharp / (sharp + 100.0) * (1 - 0.5 * min(max(block - 1.0, 0.0), 1.0)) * (0.5 + 0.5 * resolution)
        return {**result, "quality_score": float(score), "sharpness": sharp, "blockiness": block}
