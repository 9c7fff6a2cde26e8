"""On-screen text (subtitles, credits, signs, UI) per shot, from a real OCR model that ships in a package.

Model: RapidOCR (`rapidocr-onnxruntime`), the PP-OCRv4 text detector (DB) and recogniser (CRNN) as ONNX files inside
the wheel; nothing is downloaded. It runs on a few evenly spaced keyframes of each shot (first, middle, last by
default); the angle classifier is skipped (cartoon text is upright).

Columns, per shot:
- `text_prob` in [0, 1]: per frame, the detected-area-weighted mean of the recogniser's confidences over the text
  boxes the detector found (0 when it found none); the shot takes the maximum over its sampled frames. So a frame
  with no detected text scores exactly 0, and a frame with a large, well-read caption scores near 1.
- `text_area` in [0, 1]: the largest fraction of a sampled frame covered by the union of detected text boxes.
- `text_content`: the strings read with confidence >= `min_confidence`, in reading order per frame, distinct
  strings joined by " | " (empty when none).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.extras import require


class TextProbAnnotator:
    """Text probability, area and content from RapidOCR (PP-OCRv4 det + rec, ONNX) on sampled keyframes."""

    name = "text"
    columns = (
        pa.field("text_prob", pa.float64()),
        pa.field("text_area", pa.float64()),
        pa.field("text_content", pa.string()),
    )

    def __init__(self, frames: int = 3, det_side: int = 960, min_confidence: float = 0.5, threads: int = 1) -> None:
        if frames < 1:
            raise ValueError(f"text.frames must be >= 1, got {frames}")
        self.frames, self.det_side, self.min_confidence, self.threads = frames, det_side, min_confidence, threads
        self._engine = None

    @property
    def model_id(self) -> str:
        return f"rapidocr-onnxruntime@{importlib.metadata.version('rapidocr-onnxruntime')}:PP-OCRv4-det+rec"

    def setup(self) -> None:
        rapidocr = require("rapidocr_onnxruntime")
        # limit_type "max": frames larger than det_side are scaled down, smaller ones are not blown up (the
        # package default scales the short side up to 736, which costs 4x on SD cartoons for no gain).
        # text_score 0: keep every recognised box with its raw confidence; the threshold is applied here.
        self._engine = rapidocr.RapidOCR(
            det_limit_type="max",
            det_limit_side_len=self.det_side,
            text_score=0.0,
            intra_op_num_threads=self.threads,
            inter_op_num_threads=1,
        )

    def read(self, image: np.ndarray) -> tuple[float, float, list[str]]:
        """One (H, W, 3) uint8 RGB frame -> (text probability, covered fraction, confident strings)."""
        cv2 = require("cv2")
        if self._engine is None:
            self.setup()
        h, w = image.shape[:2]
        if min(h, w) < 16:  # below the detector's smallest text; RapidOCR would blow it up to 30 px of noise
            return 0.0, 0.0, []
        scale = self.det_side / max(h, w)
        if scale < 1.0:  # the detector would scale down anyway; doing it first saves RapidOCR's full-size copies
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        result, _ = self._engine(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), use_cls=False)
        if not result:
            return 0.0, 0.0, []
        mask = np.zeros((h, w), np.uint8)
        areas, confidences, texts = [], [], []
        for box, text, confidence in result:
            polygon = np.asarray(box, np.float32).reshape(-1, 2)
            areas.append(float(cv2.contourArea(polygon)))
            confidences.append(float(confidence))
            cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
            if float(confidence) >= self.min_confidence and text.strip():
                texts.append(text.strip())
        weights = np.asarray(areas) + 1e-6
        prob = float(np.clip(np.average(confidences, weights=weights), 0.0, 1.0))
        return prob, float(mask.mean()), texts

    def annotate(self, view: ShotView) -> dict[str, Any]:
        probs, areas, texts = [], [], []
        for image in view.images(evenly_spaced(view.n_keyframes, self.frames)):
            prob, area, strings = self.read(image)
            probs.append(prob)
            areas.append(area)
            texts.extend(s for s in strings if s not in texts)
        return {
            "text_prob": max(probs),
            "text_area": max(areas),
            "text_content": " | ".join(texts),
        }
