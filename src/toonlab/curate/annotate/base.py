"""The annotator contract: one class per annotator, one method to write, its columns declared up front.

An annotator fills a few columns of each shot's row from what the analysis pass kept: the shot's keyframe
images (decoded lazily from the source's spool), its frame numbers and the columns earlier annotators filled.
Columns are declared as pyarrow fields so every parquet file of a dataset has the same schema whether or not an
annotator ran (its columns are null then, never invented). Heavy libraries and models load in `setup()`.
Each annotator also names the model and version behind its columns (`model_id`), recorded per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from toonlab.curate.records import Shot, SourceResult
from toonlab.extras import require


@dataclass
class ShotView:
    """What an annotator sees of one shot."""

    result: SourceResult
    position: int  # index of the shot in result.shots
    annotations: dict[str, Any] = field(default_factory=dict)  # columns filled so far for this shot
    _images: list[np.ndarray] | None = None

    @property
    def shot(self) -> Shot:
        return self.result.shots[self.position]

    @property
    def fps(self) -> float:
        return float(self.result.probe.fps)

    def images(self) -> list[np.ndarray]:
        """The shot's keyframes as (H, W, 3) uint8 RGB, in frame order (decoded once, then cached)."""
        if self._images is None:
            cv2 = require("cv2")
            blobs = [self.result.images[i] for i in self.shot.keyframes if i in self.result.images]
            if not blobs:
                raise ValueError("no keyframe images were kept (--image-format none); annotators need them")
            with open(self.result.spool, "rb") as spool:
                decoded = []
                for blob in blobs:
                    spool.seek(blob.offset)
                    buf = np.frombuffer(spool.read(blob.size), np.uint8)
                    decoded.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
            self._images = decoded
        return self._images


class Annotator(Protocol):
    name: ClassVar[str]
    columns: ClassVar[tuple[pa.Field, ...]]  # what it fills; nullable

    @property
    def model_id(self) -> str:
        """Model name and version behind the columns (e.g. 'wd14-onnx@<sha8>', 'opencv-farneback@5.0')."""
        ...

    def setup(self) -> None: ...

    def annotate(self, view: ShotView) -> dict[str, Any]:
        """Column -> value for one shot; only keys from `columns`."""
        ...


MODELS_COLUMN = pa.field("annotation_models", pa.map_(pa.string(), pa.string()))  # annotator -> model_id


class AnnotateStage:
    """Runs the configured annotators, in order, on every shot of a source."""

    name = "annotate"

    def __init__(self, annotators: Sequence[Annotator]) -> None:
        from toonlab.curate.analyze import Resources

        self.annotators = list(annotators)
        self.resources = Resources(cpus=1.0)

    def setup(self) -> None:
        for annotator in self.annotators:
            annotator.setup()

    def process(self, result: SourceResult) -> SourceResult:
        from toonlab.curate.analyze import StageError

        models = {a.name: a.model_id for a in self.annotators}
        result.annotations = []
        for position in range(len(result.shots)):
            view = ShotView(result, position)
            for annotator in self.annotators:
                try:
                    values = annotator.annotate(view)
                except Exception as exc:
                    raise StageError(f"annotate:{annotator.name}", f"{type(exc).__name__}: {exc}") from exc
                allowed = {f.name for f in annotator.columns}
                unknown = set(values) - allowed
                if unknown:
                    raise StageError(f"annotate:{annotator.name}", f"filled undeclared columns {sorted(unknown)}")
                view.annotations.update(values)
            result.annotations.append({**view.annotations, MODELS_COLUMN.name: models})
        return result
