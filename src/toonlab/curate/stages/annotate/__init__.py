"""Annotators: one file per annotator; `REGISTRY` maps the names used by `--annotate` to their classes.

`annotation_fields()` lists every column any annotator can fill, so the dataset schema is the same whatever
ran. Importing this package must stay cheap: annotators import their heavy libraries in `setup()`.
"""

from __future__ import annotations

import pyarrow as pa

from toonlab.curate.stages.annotate.aesthetic import AestheticAnnotator
from toonlab.curate.stages.annotate.base import MODELS_COLUMN, AnnotateStage, Annotator, ShotView
from toonlab.curate.stages.annotate.caption import CaptionAnnotator
from toonlab.curate.stages.annotate.motion import MotionAnnotator
from toonlab.curate.stages.annotate.quality import QualityAnnotator
from toonlab.curate.stages.annotate.tagger import TaggerAnnotator
from toonlab.curate.stages.annotate.taxonomy import TaxonomyAnnotator
from toonlab.curate.stages.annotate.text_prob import TextProbAnnotator

REGISTRY: dict[str, type] = {}
REGISTRY.update(text=TextProbAnnotator, motion=MotionAnnotator, quality=QualityAnnotator)  # OpenCV / packaged OCR
REGISTRY.update(aesthetic=AestheticAnnotator, tags=TaggerAnnotator)  # need local model files (constructor options)
REGISTRY.update(taxonomy=TaxonomyAnnotator, caption=CaptionAnnotator)  # taxonomy and caption read the tagger's columns


def annotation_fields() -> list[pa.Field]:
    fields: list[pa.Field] = []
    for cls in REGISTRY.values():
        fields.extend(f for f in cls.columns if f.name not in {g.name for g in fields})
    return [*fields, MODELS_COLUMN]


__all__ = ["REGISTRY", "AnnotateStage", "Annotator", "ShotView", "annotation_fields"]
