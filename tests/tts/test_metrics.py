"""Metrics on signals with known answers: MCD, F0 RMSE, WER, correlations, style features."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("librosa")

from toonlab.tts.audio import AudioParams, mel_spectrogram  # noqa: E402
from toonlab.tts.metrics import (  # noqa: E402
    edit_distance,
    f0_rmse,
    f0_track,
    mcd,
    partial_correlation,
    pearson,
    style_features,
    word_error_rate,
)

P = AudioParams()


def sine(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * P.sample_rate)) / P.sample_rate
    return (0.5 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))).astype(np.float32)


def log_mel(wav: np.ndarray) -> np.ndarray:
    import torch

    return mel_spectrogram(torch.from_numpy(wav), P).numpy()


def test_mcd_is_zero_for_identical_input_and_grows_with_difference():
    a, b, c = log_mel(sine(150)), log_mel(sine(160)), log_mel(sine(300))
    assert mcd(a, a)[0] == pytest.approx(0.0, abs=1e-9)
    assert 0 < mcd(a, b)[0] < mcd(a, c)[0]


def test_mcd_dtw_absorbs_a_time_stretch():
    a = log_mel(np.concatenate([sine(150, 0.5), sine(300, 0.5)]))
    slow = log_mel(np.concatenate([sine(150, 0.8), sine(300, 0.8)]))
    d, path = mcd(a, slow)
    assert d < 0.2 * mcd(a, log_mel(np.concatenate([sine(300, 0.5), sine(150, 0.5)])))[0]
    assert path[0].tolist() == [0, 0] and path[-1].tolist() == [len(a) - 1, len(slow) - 1]


def test_f0_track_and_rmse():
    x = np.concatenate([sine(150, 0.6), np.zeros(4000, np.float32)])
    track = f0_track(x, P.sample_rate, P.hop_length)
    voiced = track.f0[track.voiced]
    assert np.median(voiced) == pytest.approx(150, rel=0.03)
    assert not track.voiced[-5:].any()  # the silent tail is unvoiced
    other = f0_track(np.concatenate([sine(180, 0.6), np.zeros(4000, np.float32)]), P.sample_rate, P.hop_length)
    n = min(len(track.f0), len(other.f0))
    path = np.stack([np.arange(n), np.arange(n)], 1)
    assert f0_rmse(track, other, path) == pytest.approx(30, abs=6)
    assert f0_rmse(track, track, path) == pytest.approx(0, abs=1e-6)


def test_word_error_rate():
    assert edit_distance("a b c".split(), "a x c d".split()) == 2
    assert word_error_rate(["The cat, sat!"], ["the cat sat"]) == 0
    assert word_error_rate(["one two three four"], ["one three four five"]) == pytest.approx(0.5)


def test_correlations():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    x, y = z + 0.1 * rng.normal(size=200), z + 0.1 * rng.normal(size=200)
    assert pearson(x, y) > 0.95
    assert abs(partial_correlation(x, y, z)) < 0.2  # all shared variance comes from z
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3])) and np.isnan(partial_correlation([1, 1, 1, 1], z[:4], z[:4]))


def test_style_features_see_pitch_and_loudness():
    low, high = sine(120), sine(240)
    f_low = style_features(low, log_mel(low), "la la la", P.sample_rate, P.hop_length)
    f_high = style_features(high * 0.3, log_mel(high * 0.3), "la la la", P.sample_rate, P.hop_length)
    assert f_low.shape == (11 + 2 * P.n_mels,) and np.isfinite(f_low).all()
    assert f_high[0] - f_low[0] == pytest.approx(np.log(2), abs=0.05)  # mean log F0
