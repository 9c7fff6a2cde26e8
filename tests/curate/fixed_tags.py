"""A stand-in for the tagger with fixed `tag_scores`, so taxonomy and caption run after it in a real curate run."""

from __future__ import annotations

import pyarrow as pa

from toonlab.curate.pairs import pairs_type

TAGS = {"night": 0.7, "outdoors": 0.9, "no_humans": 0.8, "scenery": 0.6, "building": 0.5}


class FixedTags:
    name = "fixed_tags"
    columns = (pa.field("tag_scores", pairs_type(pa.float64())),)
    model_id = "fixed@1"

    def setup(self) -> None:
        pass

    def annotate(self, view) -> dict:
        return {"tag_scores": dict(TAGS)}
