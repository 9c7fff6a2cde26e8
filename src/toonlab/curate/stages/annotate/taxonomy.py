"""Sakuga-42M's six taxonomy axes derived from the tagger's output by the table in `taxonomy_table.py`.

Per axis, each class scores sum(weight x confidence) over the tags that vote for it; the best class wins when its
score reaches `min_support`, else the axis is `Others(label: -1)`. So the decision is by aggregate confidence, not
mere presence: a shot tagged both `full_body` (0.4) and `upper_body` (0.8) is upper_body, as in the released demo
row. Values use the release's string format, `upper_body(label: 1)`, beside an integer `Taxonomy_<axis>_label`
column; `taxonomy_scores` keeps every class's aggregate score so thresholds can be re-tuned from saved data.

Input: `tag_scores` (tag -> confidence) filled by the tagger when it ran earlier in `--annotate`; failing that the
space-separated `anime_tags` with confidence 1.0 each. Without either, every taxonomy column is null (unknown, not
Others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa

from toonlab.curate.stages.annotate.base import ShotView
from toonlab.curate.taxonomy_table import AXES, OTHERS, TABLE, TaxonomyClass


def tag_confidences(annotations: Mapping[str, Any]) -> dict[str, float] | None:
    """Tag -> confidence from the tagger's columns, whatever container the tagger used; None when it did not run.

    `tag_scores` may be a dict, a list of (tag, score) pairs (pyarrow map as Python) or of {"tag", "score"} dicts.
    """
    scores = annotations.get("tag_scores")
    if scores is not None:
        if isinstance(scores, Mapping):
            items: Iterable = scores.items()
        else:
            items = ((s["tag"], s["score"]) if isinstance(s, Mapping) else s for s in scores)
        return {str(tag): float(score) for tag, score in items if score is not None}
    tags = annotations.get("anime_tags")
    if tags is None:
        return None
    return {tag: 1.0 for tag in str(tags).split()}


def taxonomy_value(name: str, label: int) -> str:
    return f"{name}(label: {label})"


def classify(
    confidences: Mapping[str, float], table: Iterable[TaxonomyClass] = TABLE, min_support: float = 0.35
) -> tuple[dict[str, tuple[str, int]], dict[str, float]]:
    """Axis -> (class name, label), plus "<axis>/<class>" -> aggregate score for every class."""
    scores: dict[str, float] = {}
    best: dict[str, tuple[float, str, int]] = {}
    for cls in table:
        score = sum(weight * confidences.get(tag, 0.0) for tag, weight in cls.tags.items())
        scores[f"{cls.axis}/{cls.name}"] = score
        if score >= min_support and score > best.get(cls.axis, (0.0,))[0]:  # strict: the earlier row wins a tie
            best[cls.axis] = (score, cls.name, cls.label)
    chosen = {axis: (best[axis][1], best[axis][2]) if axis in best else OTHERS for axis in AXES}
    return chosen, scores


class TaxonomyAnnotator:
    """Taxonomy_Time/_Venue/_Media/_Filming/_Composition/_Character from tags (no model of its own)."""

    name = "taxonomy"
    columns = (
        *(pa.field(f"Taxonomy_{axis}", pa.string()) for axis in AXES),
        *(pa.field(f"Taxonomy_{axis}_label", pa.int8()) for axis in AXES),
        pa.field("taxonomy_scores", pa.map_(pa.string(), pa.float32())),
    )

    def __init__(self, min_support: float = 0.35) -> None:
        if min_support <= 0:
            raise ValueError(f"taxonomy.min_support must be > 0, got {min_support}")
        self.min_support = float(min_support)

    @property
    def model_id(self) -> str:
        return f"toonlab-taxonomy-table@1(min_support={self.min_support:g})"

    def setup(self) -> None:
        pass

    def annotate(self, view: ShotView) -> dict[str, Any]:
        confidences = tag_confidences(view.annotations)
        if confidences is None:
            return {}  # no tagger output: unknown, every column stays null
        chosen, scores = classify(confidences, TABLE, self.min_support)
        row: dict[str, Any] = {"taxonomy_scores": {k: round(v, 4) for k, v in scores.items() if v > 0}}
        for axis, (cls_name, label) in chosen.items():
            row[f"Taxonomy_{axis}"] = taxonomy_value(cls_name, label)
            row[f"Taxonomy_{axis}_label"] = label
        return row
