"""Danbooru-vocabulary tags and a content rating from a WD14-style tagger (ONNX) in a local folder.

Layout (the one SmilingWolf's wd-*-tagger releases use): `model_dir/model.onnx`, one input (N, S, S, 3) float32 BGR in
0-255 (S = 448 for the v2/v3 taggers; read from the model), one output (N, T) of per-tag probabilities, and
`model_dir/selected_tags.csv` with columns `tag_id,name,category,count`, one row per output, category 9 = rating
(general / sensitive / questionable / explicit), 0 = general tags, 4 = characters. Preprocessing follows the reference
app: flatten on white, pad to a square with white, bicubic resize to S, RGB -> BGR.

Per shot, up to `frames` evenly spaced keyframes are tagged. A tag is kept when at least one frame passes its category's
threshold (`general_threshold` 0.35, `character_threshold` 0.85: the common WD14 settings), a union over keyframes as in
Sakuga-42M; kept tags are ordered by the number of frames that passed, then by mean probability.

Columns: `anime_tags` (kept general + character tags, space-separated, Danbooru spelling; empty when none),
`tag_scores` (kept tag -> mean probability over the sampled frames), `rating` (argmax of the mean rating
probabilities), `rating_scores` (rating class -> mean probability).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.annotate.aesthetic import file_sha8
from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.extras import require

RATING, GENERAL, CHARACTER = 9, 0, 4


def read_tags(path: Path) -> tuple[list[str], np.ndarray]:
    """selected_tags.csv -> (names, categories (T,) int)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"name", "category"} <= set(rows[0]):
        raise ValueError(f"{path} must have columns tag_id,name,category,count")
    return [r["name"] for r in rows], np.array([int(r["category"]) for r in rows])


def square_bgr(image: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3|4) uint8 RGB(A) -> (size, size, 3) float32 BGR: white background, white padding, bicubic resize."""
    pil = require("PIL.Image")
    rgba = pil.fromarray(image).convert("RGBA")
    canvas = pil.new("RGBA", rgba.size, (255, 255, 255, 255))
    canvas.alpha_composite(rgba)
    side = max(rgba.size)
    padded = pil.new("RGB", (side, side), (255, 255, 255))
    padded.paste(canvas.convert("RGB"), ((side - rgba.size[0]) // 2, (side - rgba.size[1]) // 2))
    if side != size:
        padded = padded.resize((size, size), pil.BICUBIC)
    return np.asarray(padded, np.float32)[:, :, ::-1]


class TaggerAnnotator:
    """WD14-style ONNX tagger: anime tags (union over keyframes, with mean scores) and a 4-way rating."""

    name = "tags"
    columns = (
        pa.field("anime_tags", pa.string()),
        pa.field("tag_scores", pa.map_(pa.string(), pa.float64())),
        pa.field("rating", pa.string()),
        pa.field("rating_scores", pa.map_(pa.string(), pa.float64())),
    )

    def __init__(
        self,
        model_dir: str | None = None,
        general_threshold: float = 0.35,
        character_threshold: float = 0.85,
        frames: int = 4,
        threads: int = 1,
    ) -> None:
        if not model_dir:
            raise ValueError(
                "tags needs a local WD14-style tagger: --annotator-option tags.model_dir=DIR "
                "(DIR holds model.onnx and selected_tags.csv)"
            )
        self.model_dir = Path(model_dir)
        for name in ("model.onnx", "selected_tags.csv"):
            if not (self.model_dir / name).is_file():
                raise ValueError(f"tags.model_dir {self.model_dir} has no {name}")
        if frames < 1:
            raise ValueError(f"tags.frames must be >= 1, got {frames}")
        self.thresholds = {GENERAL: general_threshold, CHARACTER: character_threshold}
        self.frames, self.threads = frames, threads
        self._session = None
        self._model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is None:
            self._model_id = f"wd14-onnx:{self.model_dir.name}@{file_sha8(self.model_dir / 'model.onnx')}"
        return self._model_id

    def setup(self) -> None:
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(self.model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self.names, self.categories = read_tags(self.model_dir / "selected_tags.csv")
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        self.size = model_input.shape[1] if isinstance(model_input.shape[1], int) else 448
        outputs = self._session.get_outputs()[0].shape[-1]
        if isinstance(outputs, int) and outputs != len(self.names):
            raise ValueError(f"model.onnx has {outputs} outputs but selected_tags.csv lists {len(self.names)} tags")
        if int((self.categories == RATING).sum()) == 0:
            raise ValueError("selected_tags.csv has no rating rows (category 9)")

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 RGB frames -> (N, T) tag probabilities."""
        if self._session is None:
            self.setup()
        # one frame per run: released taggers fix the batch size to 1 or leave it free, both accept this
        return np.concatenate(
            [self._session.run(None, {self._input: square_bgr(image, self.size)[None]})[0] for image in images]
        ).astype(np.float64)

    def annotate(self, view: ShotView) -> dict[str, Any]:
        probs = self.probabilities(view.images(evenly_spaced(view.n_keyframes, self.frames)))  # (N, T)
        mean = probs.mean(axis=0)  # (T,)
        thresholds = np.array([self.thresholds.get(int(c), np.inf) for c in self.categories])  # rating rows: never
        passed = (probs >= thresholds).sum(axis=0)  # (T,) frames where each tag passed
        kept = sorted(np.flatnonzero(passed), key=lambda t: (-passed[t], -mean[t]))
        ratings = np.flatnonzero(self.categories == RATING)
        return {
            "anime_tags": " ".join(self.names[t] for t in kept),  # "" when no tag passed
            "tag_scores": {self.names[t]: float(mean[t]) for t in kept},
            "rating": self.names[ratings[np.argmax(mean[ratings])]],
            "rating_scores": {self.names[t]: float(mean[t]) for t in ratings},
        }
