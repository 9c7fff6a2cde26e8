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


def evenly_spaced(n: int, k: int) -> list[int]:
    """`k` evenly spaced indices into `n` items, first and last included (all of them when n <= k; the middle
    one when k == 1)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n // 2]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@dataclass
class ShotView:
    """What an annotator sees of one shot."""

    result: SourceResult
    position: int  # index of the shot in result.shots
    annotations: dict[str, Any] = field(default_factory=dict)  # columns filled so far for this shot
    _decoded: dict[int, np.ndarray] = field(default_factory=dict)  # keyframe position -> RGB image

    @property
    def shot(self) -> Shot:
        return self.result.shots[self.position]

    @property
    def fps(self) -> float:
        return float(self.result.probe.fps)

    @property
    def n_keyframes(self) -> int:
        return len(self.shot.keyframes)

    def images(self, positions: Sequence[int] | None = None) -> list[np.ndarray]:
        """Keyframes as (H, W, 3) uint8 RGB, in the order given by `positions` (indices into the shot's keyframes;
        all of them when None). Each is decoded from the spool once, on first use, and cached: annotators that
        look at a few keyframes decode only those."""
        positions = range(self.n_keyframes) if positions is None else positions
        missing = [p for p in dict.fromkeys(positions) if p not in self._decoded]
        if missing:
            cv2 = require("cv2")
            frames = [self.shot.keyframes[p] for p in missing]
            if any(f not in self.result.images for f in frames):
                raise ValueError("no keyframe images were kept (--image-format none); annotators need them")
            with open(self.result.spool, "rb") as spool:
                for p, frame in zip(missing, frames, strict=True):
                    blob = self.result.images[frame]
                    spool.seek(blob.offset)
                    buf = np.frombuffer(spool.read(blob.size), np.uint8)
                    self._decoded[p] = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return [self._decoded[p] for p in positions]


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
        from toonlab.curate.stage import Resources

        self.annotators = list(annotators)
        self.resources = Resources(cpus=1.0)

    def setup(self) -> None:
        for annotator in self.annotators:
            annotator.setup()

    def process(self, result: SourceResult) -> SourceResult:
        from toonlab.curate.stage import StageError

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
