"""text_prob: RapidOCR finds rendered text and scores frames without text at zero."""

from __future__ import annotations

import numpy as np
import pytest

from toonlab.curate.stages.annotate.text_prob import TextProbAnnotator

pytest.importorskip("rapidocr_onnxruntime")
cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def annotator() -> TextProbAnnotator:
    annotator = TextProbAnnotator()
    annotator.setup()
    return annotator


def with_caption(image: np.ndarray, text: str) -> np.ndarray:
    """A subtitle: black text on a white band across the lower third."""
    image = image.copy()
    h, w = image.shape[:2]
    cv2.rectangle(image, (w // 10, int(h * 0.75)), (w * 9 // 10, int(h * 0.92)), (255, 255, 255), -1)
    cv2.putText(image, text, (w // 8, int(h * 0.88)), cv2.FONT_HERSHEY_SIMPLEX, h / 400, (0, 0, 0), max(1, h // 180))
    return image


def test_text_found_and_absent(annotator, draw, make_view):
    plain = draw(360, 640, seed=3)
    captioned = with_caption(plain, "HELLO WORLD 42")
    text = annotator.annotate(make_view([plain, plain, captioned]))  # the last keyframe carries the caption
    assert text["text_prob"] > 0.8
    assert 0.01 < text["text_area"] < 0.2
    assert "HELLO" in text["text_content"].upper()
    none = annotator.annotate(make_view([plain, draw(360, 640, seed=4)]))
    assert none["text_prob"] < 0.05 and none["text_area"] < 0.01 and none["text_content"] == ""


def test_bad_frames(annotator, bad_frames, make_view):
    for name, frame in bad_frames.items():
        values = annotator.annotate(make_view([frame]))
        assert 0.0 <= values["text_prob"] <= 1.0 and 0.0 <= values["text_area"] <= 1.0, name
        if name != "huge":
            assert values["text_prob"] == 0.0, name


def test_columns_in_dataset(check_columns):
    check_columns("text")


@pytest.mark.realmedia
def test_real_stills(annotator, stills, make_view):
    """Painted backgrounds and character sprites carry no text; a subtitle rendered onto a background is read."""
    for name, image in stills.items():
        assert annotator.read(image)[0] < 0.05, name
    prob, area, strings = annotator.read(with_caption(stills["bg_meadow"], "Where are you going?"))
    assert prob > 0.9 and 0.01 < area < 0.1 and strings == ["Where are you going?"]
