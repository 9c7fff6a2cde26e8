"""The Sakuga keyframe rule: SSIM equal to scikit-image, streaming selection, timing labels."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from toonlab.curate.stages.analyze.keyframes import KeyframeSelector, dynamic_score, shot_keyframes, ssim, timing_label


@pytest.mark.parametrize("noise", [0, 3, 30, 120])
def test_ssim_matches_scikit_image(noise):
    rng = np.random.default_rng(noise)
    a = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-noise, noise + 1, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, b) == pytest.approx(structural_similarity(a, b, win_size=7, data_range=255), abs=1e-6)


def test_ssim_flat_images():
    flat = np.full((64, 64), 200, np.uint8)
    assert ssim(flat, flat) == pytest.approx(1.0)
    assert ssim(flat, np.zeros_like(flat)) < 0.01


def test_selector_keeps_first_and_changes_only():
    rng = np.random.default_rng(0)
    drawings = [rng.integers(0, 256, (64, 64), dtype=np.uint8) for _ in range(3)]
    frames = [drawings[0], drawings[0], drawings[1], drawings[1], drawings[1], drawings[2]]
    one_batch = KeyframeSelector(0.95).push(np.stack(frames))[0]
    selector = KeyframeSelector(0.95)  # the same frames in batches of 4 and 2: the batch edge changes nothing
    split = np.concatenate([selector.push(np.stack(frames[:4]))[0], selector.push(np.stack(frames[4:]))[0]])
    assert np.flatnonzero(one_batch).tolist() == np.flatnonzero(split).tolist() == [0, 2, 5]


def test_reference_is_previous_frame_not_last_kept():
    # slow drift: each step is tiny, so nothing after frame 0 is kept although frame 9 differs from frame 0
    base = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    frames = [np.roll(base, i // 3, axis=1) for i in range(10)]
    keep, scores = KeyframeSelector(0.95).push(np.stack(frames))
    assert keep.sum() == 1 and np.isnan(scores[0]) and (scores[1:] > 0.95).all()
    assert ssim(frames[0], frames[9]) < 1.0


def test_shot_keyframes_forces_shot_start():
    changed = [3, 5, 10, 11, 20]
    assert shot_keyframes(changed, 0, 10) == (0, 3, 5)
    assert shot_keyframes(changed, 10, 20) == (10, 11)  # 10 passed the rule and is the shot start
    assert shot_keyframes(changed, 12, 20) == (12,)


def test_shot_keyframes_equal_a_plain_filter_on_random_shots():
    rng = np.random.default_rng(3)
    changed = sorted(rng.choice(np.arange(1, 5000), 3000, replace=False).tolist())
    bounds = [0, *sorted(rng.choice(np.arange(1, 5000), 60, replace=False).tolist()), 5000]
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        want = (start, *[i for i in changed if start < i < end])
        got = shot_keyframes(changed, start, end)
        assert got == want and all(type(i) is int for i in got)


@pytest.mark.parametrize(
    ("keyframes", "end", "label"),
    [
        ((0,), 30, "still"),
        (tuple(range(0, 24)), 24, "ones"),
        (tuple(range(0, 24, 2)), 24, "twos"),
        (tuple(range(0, 24, 3)), 24, "threes"),
        ((0, 1, 3, 6, 7, 9, 12, 13, 15), 18, "mixed"),
        (tuple(range(0, 48, 8)), 48, "mixed"),
    ],
)
def test_timing_label(keyframes, end, label):
    assert timing_label(keyframes, end) == label


def test_dynamic_score():
    assert dynamic_score(51, 253) == 51 / 253  # the Sakuga-42M demo row, bit-exact
    assert dynamic_score(0, 0) == 0.0
