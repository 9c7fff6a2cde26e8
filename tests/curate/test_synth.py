"""Ground-truth invariants of the synthetic cel clips and the cut scoring."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")
pytest.importorskip("skimage")

from synth import (  # noqa: E402
    ShotSpec,
    boundary_f1,
    decoded_keyframes,
    keyframes_of,
    luma_ssim,
    render_frames,
    sakuga_keep,
    sakuga_luma,
    shot_ranges_of,
    standard_specs,
    write_clip,
)


def _keyframes(shots: list[ShotSpec]) -> tuple[tuple[int, ...], ...]:
    return keyframes_of(render_frames(shots), shot_ranges_of(shots))


def test_hold_cycles_give_the_drawing_timeline():
    assert ShotSpec(6, 1).drawing_index() == [0, 1, 2, 3, 4, 5]
    assert ShotSpec(6, 2).drawing_index() == [0, 0, 1, 1, 2, 2]
    assert ShotSpec(7, 3).drawing_index() == [0, 0, 0, 1, 1, 1, 2]
    assert ShotSpec(8, (1, 2, 3)).drawing_index() == [0, 1, 1, 2, 2, 2, 3, 4]
    with pytest.raises(ValueError):
        ShotSpec(4, 0).drawing_index()


def test_standard_specs_are_varied_and_consistent():
    specs = standard_specs()
    assert 6 <= len(specs) <= 10
    for shots in specs:
        assert 2 <= len(shots) <= 6
        assert all(18 <= s.n_frames <= 120 for s in shots)
        ranges = shot_ranges_of(shots)
        assert ranges[0][0] == 0
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert ranges[-1][1] == sum(s.n_frames for s in shots)
        assert all(0 <= f < s.n_frames for s in shots for f in s.flashes)
    flat = [s for shots in specs for s in shots]
    assert any(s.pan for s in flat) and any(s.flashes for s in flat)
    assert any(s.hold == s.n_frames for s in flat)  # a held still
    assert {1, 2, 3} <= {s.hold for s in flat if isinstance(s.hold, int)}
    assert any(not isinstance(s.hold, int) for s in flat)  # mixed timing


def test_timing_gives_the_expected_keyframes():
    ones, twos, threes, still = (ShotSpec(12, h, seed=i) for i, h in enumerate((1, 2, 3, 12)))
    assert _keyframes([ones]) == (tuple(range(12)),)
    assert _keyframes([twos]) == (tuple(range(0, 12, 2)),)
    assert _keyframes([threes]) == (tuple(range(0, 12, 3)),)
    assert _keyframes([still]) == ((0,),)


def test_held_frames_are_pixel_identical_and_drawings_differ():
    frames = list(render_frames([ShotSpec(4, 2, seed=3)]))
    assert np.array_equal(frames[0], frames[1]) and np.array_equal(frames[2], frames[3])
    assert luma_ssim(sakuga_luma(frames[1]), sakuga_luma(frames[2])) < 0.85
    assert not sakuga_keep(frames[0], frames[1]) and sakuga_keep(frames[1], frames[2])


def test_shots_look_different_across_seeds():
    a = next(render_frames([ShotSpec(1, seed=1)]))
    b = next(render_frames([ShotSpec(1, seed=2)]))
    assert luma_ssim(sakuga_luma(a), sakuga_luma(b)) < 0.7
    assert np.abs(a.astype(int).mean((0, 1)) - b.astype(int).mean((0, 1))).max() > 30  # palettes differ


def test_flash_and_pan_keyframes():
    flash = ShotSpec(10, 10, flashes=(4, 5), seed=5)  # a held still with a 2-frame flash
    assert _keyframes([flash]) == ((0, 4, 6),)  # into the flash, back to the scene
    frames = list(render_frames([flash]))
    assert frames[4].mean() > 225 and np.array_equal(frames[3], frames[6])
    pan = ShotSpec(8, 2, pan=True, seed=6)  # pans change every frame even on twos
    assert _keyframes([pan]) == (tuple(range(8)),)


def test_written_clip_ground_truth_matches_decoded_file(tmp_path):
    shots = [
        ShotSpec(18, (1, 2, 3), seed=1),
        ShotSpec(20, 2, flashes=(9,), seed=2),
        ShotSpec(18, 2, pan=True, seed=3),
        ShotSpec(18, 18, seed=4),
    ]
    clip = write_clip(tmp_path / "clip.mp4", shots)
    assert clip.n_frames == 74 and (clip.width, clip.height) == (320, 240)
    assert clip.cuts == (18, 38, 56)
    assert clip.shot_ranges == ((0, 18), (18, 38), (38, 56), (56, 74))
    assert all(ks[0] == start for ks, (start, _) in zip(clip.keyframes, clip.shot_ranges, strict=True))
    assert clip.keyframes[3] == (56,)
    assert decoded_keyframes(clip) == clip.keyframes


@pytest.mark.parametrize(
    ("pred", "true", "tol", "expected"),
    [
        ([], [], 1, (1.0, 1.0, 1.0)),
        ([10, 20], [10, 20], 1, (1.0, 1.0, 1.0)),
        ([11, 19], [10, 20], 1, (1.0, 1.0, 1.0)),
        ([12], [10], 1, (0.0, 0.0, 0.0)),
        ([10, 11], [10], 1, (0.5, 1.0, 2 / 3)),  # one-to-one: the second prediction is a false positive
        ([10], [10, 11], 1, (1.0, 0.5, 2 / 3)),
        ([], [5], 1, (0.0, 0.0, 0.0)),
        ([5], [], 1, (0.0, 0.0, 0.0)),
        ([10, 30, 50], [10, 31, 70, 90], 1, (2 / 3, 0.5, 4 / 7)),
    ],
)
def test_boundary_f1(pred, true, tol, expected):
    assert boundary_f1(pred, true, tol) == pytest.approx(expected)
