"""motion: a pan is camera motion, a moving figure on a still background is character motion, a still is zero."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages.annotate.motion import MotionAnnotator

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def annotator() -> MotionAnnotator:
    annotator = MotionAnnotator()
    annotator.setup()
    return annotator


def test_pan_is_camera_motion(annotator, draw, make_view):
    wide = draw(400, 800, seed=1)
    step = 12  # px per drawing at 640 wide -> 4.8 px at the 256-px analysis size
    frames = [wide[20:380, 10 + step * i : 650 + step * i] for i in range(4)]
    values = annotator.annotate(make_view(frames))
    expected = step * 256 / 640 / np.hypot(256, 144)  # displacement / diagonal at the analysis size
    assert values["camera_motion"] == pytest.approx(expected, rel=0.1)
    assert values["motion_score"] == pytest.approx(expected, rel=0.1)
    assert values["character_motion"] < 0.1 * values["camera_motion"]


def test_moving_figure_is_character_motion(annotator, draw, make_view):
    background = draw(360, 640, seed=5)
    frames = []
    for i in range(4):
        frame = background.copy()
        corners = (100 + 25 * i, 120), (200 + 25 * i, 260)
        cv2.rectangle(frame, *corners, (220, 40, 40), -1)
        cv2.rectangle(frame, *corners, (0, 0, 0), 3)
        frames.append(frame)
    values = annotator.annotate(make_view(frames))
    assert values["character_motion"] > 10 * values["camera_motion"]
    assert values["character_motion"] > 1e-3


def test_still_and_single_keyframe(annotator, draw, make_view):
    still = draw(seed=6)
    assert annotator.annotate(make_view([still, still.copy(), still.copy()])) == pytest.approx(
        {"motion_score": 0.0, "camera_motion": 0.0, "character_motion": 0.0}, abs=1e-4
    )
    assert annotator.annotate(make_view([still]))["motion_score"] == 0.0


def test_bad_frames(annotator, bad_frames, make_view):
    for name, frame in bad_frames.items():
        values = annotator.annotate(make_view([frame, frame.copy()]))
        assert all(v == pytest.approx(0.0, abs=1e-4) for v in values.values()), name


def test_synthetic_shots_in_dataset(annotated_rows, check_columns):
    check_columns("motion")
    shots = {(r["source"][-5], r["shot_index"]): r for r in annotated_rows}
    # a.mp4 shot 2 pans 5 px per frame at 320x240 (4 px at the 256-px analysis size) and is on ones, while the
    # figure riding with the camera changes pose on every drawing; the other shots have a still background
    pan = shots["a", 2]
    assert pan["camera_motion"] == pytest.approx(4 / np.hypot(256, 192), rel=0.2)
    for key in (("a", 1), ("b", 1)):
        assert shots[key]["character_motion"] > 5 * shots[key]["camera_motion"]
        assert pan["camera_motion"] > 10 * shots[key]["camera_motion"]
    held = shots["b", 2]  # one drawing held for the whole shot
    assert held["key_frame_number"] == 1 and held["motion_score"] == 0.0


@pytest.mark.realmedia
def test_real_sprite_clip_has_no_camera_motion(media_dir, tmp_path):
    """penguin-shooter.mp4: sprites composited on a flat sky, so the camera is still by construction.

    (penguin-win.mp4 is the known failure: the penguin fills the frame and jumps as a whole, which flow cannot tell
    from a camera move.)"""
    run_curate([str(media_dir / "penguin-shooter.mp4")], tmp_path, CurateConfig(annotate=("motion",)))
    (row,) = ds.dataset(tmp_path / "metadata").to_table().to_pylist()
    assert row["character_motion"] > 1e-3
    assert row["camera_motion"] < 0.2 * row["character_motion"]
