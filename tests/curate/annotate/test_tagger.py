"""tags: a tiny WD14-layout ONNX tagger whose outputs follow the mean colour gives known tags and ratings."""

from __future__ import annotations

import numpy as np
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.stages.annotate.tagger import TaggerAnnotator, square_bgr

pytest.importorskip("onnxruntime")

RED, BLUE, CYAN = (250, 10, 10), (10, 10, 250), (10, 250, 250)


def flat(colour: tuple[int, int, int], h: int = 96, w: int = 96) -> np.ndarray:
    return np.full((h, w, 3), colour, np.uint8)


@pytest.fixture(scope="module")
def annotator(tagger_dir) -> TaggerAnnotator:
    annotator = TaggerAnnotator(model_dir=str(tagger_dir))
    annotator.setup()
    return annotator


def test_preprocessing_pads_white_and_flips_to_bgr():
    wide = flat(RED, 50, 100)  # 2:1 -> padded to 100x100 with white above and below
    x = square_bgr(wide, 64)
    assert x.shape == (64, 64, 3) and x.dtype == np.float32
    assert tuple(x[32, 32]) == pytest.approx((10, 10, 250), abs=1)  # BGR
    assert tuple(x[2, 32]) == pytest.approx((255, 255, 255), abs=1)  # white padding
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent -> white
    assert square_bgr(rgba, 10).min() == 255


def test_known_tags_and_rating(annotator, make_view):
    red = annotator.annotate(make_view([flat(RED)]))
    assert red["anime_tags"] == "red_theme" and red["rating"] == "sensitive"
    blue = annotator.annotate(make_view([flat(BLUE)]))
    assert blue["anime_tags"] == "blue_theme" and blue["rating"] == "general"
    assert set(blue["rating_scores"]) == {"general", "sensitive", "questionable", "explicit"}
    cyan = annotator.annotate(make_view([flat(CYAN)]))
    assert cyan["anime_tags"] == "hatsune_miku"  # a character tag, above its 0.85 threshold


def test_union_over_keyframes_by_count(annotator, make_view):
    values = annotator.annotate(make_view([flat(BLUE), flat(RED), flat(RED)]))
    assert values["anime_tags"] == "red_theme blue_theme"  # red passed in 2 frames, blue in 1
    assert values["tag_scores"]["red_theme"] == pytest.approx(2 / 3, abs=0.01)
    assert values["tag_scores"]["blue_theme"] == pytest.approx(1 / 3, abs=0.01)
    assert values["rating"] == "sensitive" and sum(values["rating_scores"].values()) > 0


def test_thresholds_are_options(tagger_dir, make_view):
    strict = TaggerAnnotator(model_dir=str(tagger_dir), general_threshold=0.99999, character_threshold=0.99999)
    values = strict.annotate(make_view([flat(RED), flat(CYAN)]))
    assert values["anime_tags"] == "" and values["tag_scores"] == {}
    assert values["rating"] in values["rating_scores"]


def test_refuses_without_model(tmp_path):
    with pytest.raises(ValueError, match="tags.model_dir"):
        TaggerAnnotator()
    with pytest.raises(ValueError, match="model.onnx"):
        TaggerAnnotator(model_dir=str(tmp_path))
    with pytest.raises(ValueError, match="tags needs a local"):
        CurateConfig(annotate=("tags",))


def test_bad_frames(annotator, bad_frames, make_view):
    white = annotator.annotate(make_view([bad_frames["blank"] * 0 + 255]))
    assert white["anime_tags"] == "white_background"
    for name, frame in bad_frames.items():
        values = annotator.annotate(make_view([frame]))
        assert values["rating"] in {"general", "sensitive", "questionable", "explicit"}, name


def test_columns_in_dataset(check_columns):
    check_columns("tags")
