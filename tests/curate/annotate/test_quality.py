"""quality: blur lowers sharpness, heavy JPEG raises blockiness, bars and black/blank frames are flagged."""

from __future__ import annotations

import numpy as np
import pytest

from toonlab.curate.stages.annotate.quality import QualityAnnotator, bars, blockiness

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def annotator() -> QualityAnnotator:
    return QualityAnnotator()


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_blur_lowers_sharpness(annotator, draw, make_view):
    sharp = draw(360, 640, seed=1)
    blurred = cv2.GaussianBlur(sharp, (0, 0), 3)
    a, b = annotator.annotate(make_view([sharp])), annotator.annotate(make_view([blurred]))
    assert a["sharpness"] > 5 * b["sharpness"]
    assert a["quality_score"] > b["quality_score"] + 0.2


def test_jpeg_blocking(annotator, draw, make_view):
    image = cv2.GaussianBlur(draw(360, 640, seed=2), (0, 0), 1.5)  # smooth shading shows blocks at low quality
    bad, good = jpeg(image, 5), jpeg(image, 95)
    assert blockiness(cv2.cvtColor(bad, cv2.COLOR_RGB2GRAY)) > 1.5
    assert blockiness(cv2.cvtColor(good, cv2.COLOR_RGB2GRAY)) < 1.15
    assert (
        annotator.annotate(make_view([bad]))["quality_score"] < annotator.annotate(make_view([good]))["quality_score"]
    )


def test_resolution_enters_the_score(annotator, draw, make_view):
    frame = draw(360, 640, seed=3)
    sd, hd = make_view([frame], probe_size=(640, 360)), make_view([frame], probe_size=(1280, 720))
    assert annotator.annotate(sd)["quality_score"] == pytest.approx(annotator.annotate(hd)["quality_score"] * 0.75)


def test_letterbox_and_pillarbox(annotator, draw, make_view):
    frame = draw(360, 640, seed=4)
    boxed = frame.copy()
    boxed[:45], boxed[-45:] = 0, 0  # 2.39:1 content in 16:9
    pillar = frame.copy()
    pillar[:, :80], pillar[:, -80:] = 0, 0
    assert bars(cv2.cvtColor(boxed, cv2.COLOR_RGB2GRAY)) == (45, 45, 0, 0)
    values = annotator.annotate(make_view([boxed, boxed]))
    assert values["letterbox"] == pytest.approx(90 / 360) and values["pillarbox"] == 0.0
    values = annotator.annotate(make_view([pillar]))
    assert values["pillarbox"] == pytest.approx(160 / 640) and values["letterbox"] == 0.0
    # a bar only in one frame is a dark scene edge, not a bar
    assert annotator.annotate(make_view([boxed, frame]))["letterbox"] == 0.0


def test_black_and_blank_frames(annotator, draw, make_view, bad_frames):
    frame = draw(seed=5)
    black, blank = bad_frames["black"], bad_frames["blank"]
    black, blank = (cv2.resize(x, frame.shape[1::-1]) for x in (black, blank))
    values = annotator.annotate(make_view([frame, black, blank, frame]))
    assert values["black_frames"] == 0.25 and values["blank_frames"] == 0.5
    only_black = annotator.annotate(make_view([black]))
    assert only_black["black_frames"] == 1.0 and only_black["quality_score"] == 0.0


def test_bad_frames(annotator, bad_frames, make_view):
    for name, frame in bad_frames.items():
        values = annotator.annotate(make_view([frame]))
        assert 0.0 <= values["quality_score"] <= 1.0, name
        assert 0.0 <= values["letterbox"] <= 1.0 and 0.0 <= values["pillarbox"] <= 1.0, name


def test_columns_in_dataset(check_columns):
    check_columns("quality")
