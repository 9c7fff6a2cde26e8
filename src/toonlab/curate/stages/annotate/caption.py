"""`text_description`: one caption per shot from a chosen backend (template, openai, transformers).

Options (`--annotator-option caption.KEY=VALUE`): `backend` (default `template`), `frames` (keyframes sent to a
model, evenly spaced, default 4) and the backend's own constructor arguments (see caption_backends.py), e.g.
`caption.backend=openai caption.model=qwen2-vl caption.base_url=http://127.0.0.1:8000/v1`.

Columns: `text_description` (the caption), `caption_source` (backend and model, on every row, so template captions
are never mistaken for model output), `caption_raw` (the model's description before the rewrite) and
`caption_error` (why this row has no caption: the server failed, the reply was malformed; null otherwise). A backend
failure costs one caption, not the source's rows. Tags, taxonomy and motion come from earlier annotators in
`--annotate` (run `tags,taxonomy,caption` in that order); whatever is missing is left out of the context.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from toonlab.curate.stages.analyze.keyframes import timing_label
from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.curate.stages.annotate.caption_backends import BACKENDS, CaptionContext, CaptionError
from toonlab.curate.stages.annotate.taxonomy import classify, tag_confidences
from toonlab.curate.taxonomy_table import AXES


def shot_context(view: ShotView) -> CaptionContext:
    """The caption context from the shot's timing and whatever columns earlier annotators filled."""
    shot, done = view.shot, view.annotations
    confidences = tag_confidences(done) or {}
    tags = tuple(tag for tag, _ in sorted(confidences.items(), key=lambda kv: (-kv[1], kv[0])))
    taxonomy: dict[str, str] = {}
    if any(f"Taxonomy_{axis}" in done for axis in AXES):
        for axis in AXES:
            value, label = done.get(f"Taxonomy_{axis}"), done.get(f"Taxonomy_{axis}_label")
            if value is not None and label != -1:
                taxonomy[axis] = str(value).split("(")[0]
    elif confidences:  # taxonomy did not run: classify here for the caption only (columns stay null)
        taxonomy = {axis: name for axis, (name, label) in classify(confidences)[0].items() if label != -1}
    motion = done.get("motion_score")
    return CaptionContext(
        duration=shot.frame_number / view.fps,
        drawings=len(shot.keyframes),
        timing=timing_label(shot.keyframes, shot.end),
        tags=tags,
        taxonomy=taxonomy,
        motion_score=None if motion is None else float(motion),
    )


class CaptionAnnotator:
    """Captions each shot with the configured backend; see the module doc for the columns."""

    name = "caption"
    columns = (
        pa.field("text_description", pa.string()),
        pa.field("caption_source", pa.string()),
        pa.field("caption_raw", pa.string()),
        pa.field("caption_error", pa.string()),
    )

    def __init__(self, backend: str = "template", frames: int = 4, **options: Any) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"caption.backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if frames < 1:
            raise ValueError(f"caption.frames must be >= 1, got {frames}")
        try:
            self.backend = BACKENDS[backend](**options)
        except TypeError as exc:
            raise ValueError(f"caption backend {backend!r}: {exc}") from None
        self.frames = int(frames)

    @property
    def model_id(self) -> str:
        return self.backend.source

    def setup(self) -> None:
        self.backend.setup()

    def annotate(self, view: ShotView) -> dict[str, Any]:
        context = shot_context(view)
        images: list[np.ndarray] = []
        if self.backend.needs_images:
            images = view.images(evenly_spaced(view.n_keyframes, self.frames))
        row: dict[str, Any] = {"caption_source": self.backend.source}
        try:
            caption = self.backend.caption(images, context)
        except CaptionError as exc:
            return {**row, "caption_error": str(exc)}
        return {**row, "text_description": caption.text, "caption_raw": caption.raw}
