"""Taxonomy from hand-made tagger output: aggregate confidence decides, Others below the support, null without tags."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages import annotate
from toonlab.curate.stages.annotate.taxonomy import TaxonomyAnnotator, classify, tag_confidences
from toonlab.curate.taxonomy_table import AXES, TABLE


class _View:  # the annotator reads only `annotations`
    def __init__(self, annotations):
        self.annotations = annotations


def test_demo_row_is_upper_body_not_full_body():
    # the released demo row carries both full_body and upper_body and is labelled upper_body
    scores = {"full_body": 0.41, "upper_body": 0.83, "indoors": 0.9, "daylight": 0.5, "solo": 0.95, "no_humans": 0.4}
    row = TaxonomyAnnotator().annotate(_View({"tag_scores": scores}))
    assert row["Taxonomy_Composition"] == "upper_body(label: 1)"
    assert row["Taxonomy_Composition_label"] == 1
    assert row["Taxonomy_Venue"] == "indoors(label: 1)"
    assert row["Taxonomy_Time"] == "daylight(label: 0)"
    assert row["Taxonomy_Character"] == "solo(label: 1)"
    assert row["Taxonomy_Media"] == "Others(label: -1)" and row["Taxonomy_Media_label"] == -1
    assert row["Taxonomy_Filming"] == "Others(label: -1)"
    assert row["taxonomy_scores"]["Composition/upper_body"] == pytest.approx(0.83)


def test_weak_evidence_adds_up_and_support_threshold():
    # no `night` tag, but moon + starry_sky together pass the support; either alone does not
    chosen, _ = classify({"moon": 0.5, "starry_sky": 0.4})
    assert chosen["Time"] == ("night", 1)
    assert classify({"moon": 0.5})[0]["Time"] == ("Others", -1)
    assert classify({"moon": 0.5}, min_support=0.2)[0]["Time"] == ("night", 1)


def test_multiple_characters_and_sakuga_labels():
    chosen, _ = classify({"2girls": 0.8, "1boy": 0.5, "looking_to_the_side": 0.7, "sketch": 0.9, "sunset": 0.6})
    assert chosen["Character"] == ("multiple", 2)
    assert chosen["Filming"] == ("looking_away", 1)
    assert chosen["Media"] == ("sketch", 0)
    assert chosen["Time"] == ("sunset", 2)
    labels = {(c.axis, c.name): c.label for c in TABLE}
    assert labels[("Composition", "out_of_frame")] == 3 and labels[("Character", "no_humans")] == 0
    assert {c.axis for c in TABLE} == set(AXES)


def test_tag_container_shapes_and_fallback_to_anime_tags():
    assert tag_confidences({"tag_scores": [("solo", 0.9), ("night", None)]}) == {"solo": 0.9}
    assert tag_confidences({"tag_scores": [{"tag": "solo", "score": 0.7}]}) == {"solo": 0.7}
    assert tag_confidences({"anime_tags": "solo outdoors"}) == {"solo": 1.0, "outdoors": 1.0}
    row = TaxonomyAnnotator().annotate(_View({"anime_tags": "outdoors night"}))
    assert row["Taxonomy_Venue_label"] == 0 and row["Taxonomy_Time_label"] == 1


def test_null_without_tagger_and_bad_option():
    assert TaxonomyAnnotator().annotate(_View({})) == {}  # unknown: every column stays null, not Others
    with pytest.raises(ValueError, match="min_support"):
        TaxonomyAnnotator(min_support=0)


class _FakeTagger:
    """Stands in for the tagger: fixed tag_scores, so taxonomy and caption run after it in a real curate run."""

    name = "fake_tags"
    columns = (pa.field("tag_scores", pa.map_(pa.string(), pa.float64())),)
    model_id = "fixed@1"

    def setup(self):
        pass

    def annotate(self, view):
        return {"tag_scores": {"night": 0.7, "outdoors": 0.9, "no_humans": 0.8, "scenery": 0.6, "building": 0.5}}


def test_tags_then_taxonomy_then_caption_in_a_run(tmp_path, two_clips, monkeypatch):
    monkeypatch.setitem(annotate.REGISTRY, "fake_tags", _FakeTagger)
    config = CurateConfig(annotate=("fake_tags", "taxonomy", "caption"))
    run_curate([str(two_clips[0].path)], tmp_path, config)
    rows = ds.dataset(tmp_path / "metadata").to_table().to_pylist()
    assert rows
    for row in rows:
        assert (row["Taxonomy_Time"], row["Taxonomy_Venue_label"], row["Taxonomy_Character"]) == (
            "night(label: 1)",
            0,
            "no_humans(label: 0)",
        )
        assert row["text_description"].startswith("An outdoor night-time scene with no people. It shows building.")
        assert dict(row["annotation_models"])["taxonomy"].startswith("toonlab-taxonomy-table@1")
