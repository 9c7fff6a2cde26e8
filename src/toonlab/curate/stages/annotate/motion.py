"""Motion of a shot from dense optical flow between its consecutive keyframes, split into camera and character.

Keyframes are the shot's unique drawings, so each pair is one drawing change; the flow (OpenCV DIS, on grey
frames scaled so the longer side is `side` pixels) is the displacement from one drawing to the next. Per pair:

- the camera (global) motion is a robust fit to the flow: a similarity transform (translation, rotation, zoom)
  fitted with RANSAC (`cv2.estimateAffinePartial2D`) to flow vectors sampled on a grid in the outer 20% of the
  frame where the first frame has texture. Background art under a pan or zoom moves this way as a whole,
  characters do not, and tend to sit inside the frame; flat paint has no observable motion, so a shot whose edges
  are flat (a figure on a flat sky) has no measurable camera motion and all its motion counts as character;
- the character motion is what the fit leaves: the residual flow.

Columns (per shot, means over its pairs; magnitudes are per pixel, averaged over the frame and divided by the
frame diagonal, so they do not depend on resolution: 0.01 = one hundredth of the diagonal per drawing):
- `motion_score`: mean flow magnitude;
- `camera_motion`: mean magnitude of the fitted global flow;
- `character_motion`: mean magnitude of the residual flow.
A shot with one keyframe (a held drawing) has no drawing change: all three are 0. They sit beside Sakuga's
`dynamic_score` (drawings per frame), which cannot tell a pan on twos from character animation on twos.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.extras import require

TEXTURE = 40.0  # Sobel gradient magnitude (grey levels per pixel, x4 kernel gain) above which flow is trusted
BAND = 0.2  # camera evidence comes from the outer 20% of the frame on each side


class MotionAnnotator:
    """Optical-flow motion per shot with a camera / character split (OpenCV DIS + RANSAC similarity fit)."""

    name = "motion"
    columns = (
        pa.field("motion_score", pa.float64()),
        pa.field("camera_motion", pa.float64()),
        pa.field("character_motion", pa.float64()),
    )

    def __init__(self, side: int = 256, max_pairs: int = 16, grid: int = 8) -> None:
        if side < 32 or max_pairs < 1 or grid < 1:
            raise ValueError("motion: side must be >= 32, max_pairs and grid >= 1")
        self.side, self.max_pairs, self.grid = side, max_pairs, grid
        self._dis = None

    @property
    def model_id(self) -> str:
        return f"opencv-dis-medium+ransac-similarity@{require('cv2').__version__}"

    def setup(self) -> None:
        cv2 = require("cv2")
        self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def _grey(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) RGB -> (h, w) uint8 grey with max(h, w) <= side (never enlarged)."""
        cv2 = require("cv2")
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = grey.shape
        scale = min(1.0, self.side / max(h, w))
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        return grey

    def pair(self, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
        """Two (h, w) grey frames -> (total, camera, character) mean flow magnitude / diagonal."""
        cv2 = require("cv2")
        if self._dis is None:
            self.setup()
        h, w = a.shape
        if max(h, w) < 16:  # DIS needs a side >= 12; so small a frame has no measurable motion
            return 0.0, 0.0, 0.0
        flow = self._dis.calc(a, b, None)  # (h, w, 2): dx, dy in pixels
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        points = np.stack([xs, ys], -1)  # (h, w, 2)
        step = max(1, min(h, w) // (4 * self.grid))
        # Evidence for the camera: grid samples in the outer band of the frame (where background shows; figures
        # tend to sit inside) that have texture (in flat cel paint the flow is unobservable, and DIS fills it from
        # the nearest edges, e.g. with a moving figure's motion). No such samples: no observable camera motion.
        grad = np.hypot(cv2.Sobel(a, cv2.CV_32F, 1, 0), cv2.Sobel(a, cv2.CV_32F, 0, 1))
        band = np.ones((h, w), bool)
        band[int(h * BAND) : h - int(h * BAND), int(w * BAND) : w - int(w * BAND)] = False
        usable = ((grad > TEXTURE) & band)[::step, ::step].reshape(-1)
        src = points[::step, ::step].reshape(-1, 2)[usable]
        dst = src + flow[::step, ::step].reshape(-1, 2)[usable]
        camera = np.zeros_like(flow)
        if len(src) >= 16:
            # 0.5 px (at `side` resolution) of disagreement puts a vector outside the camera model.
            matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=0.5)
            if matrix is None:  # degenerate (e.g. too few distinct vectors): the median flow is the camera
                camera[:] = np.median(dst - src, axis=0)
            else:
                camera = points @ matrix[:, :2].T + matrix[:, 2] - points  # (h, w, 2) flow the fit explains
        diagonal = float(np.hypot(h, w))

        def magnitude(field: np.ndarray) -> float:
            return float(np.linalg.norm(field, axis=-1).mean() / diagonal)

        return magnitude(flow), magnitude(camera), magnitude(flow - camera)

    def annotate(self, view: ShotView) -> dict[str, Any]:
        if view.n_keyframes < 2:
            return {"motion_score": 0.0, "camera_motion": 0.0, "character_motion": 0.0}
        starts = evenly_spaced(view.n_keyframes - 1, self.max_pairs)  # pair i = keyframes (i, i + 1)
        needed = sorted({*starts, *(s + 1 for s in starts)})
        greys = {i: self._grey(image) for i, image in zip(needed, view.images(needed), strict=True)}
        totals = np.array([self.pair(greys[i], greys[i + 1]) for i in starts])  # (pairs, 3)
        total, camera, character = totals.mean(axis=0)
        return {"motion_score": float(total), "camera_motion": float(camera), "character_motion": float(character)}
