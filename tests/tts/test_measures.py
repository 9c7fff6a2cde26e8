"""Measurement pieces with known answers: degraded mels, the model-free style statistics and the sweep rank test,
interval formulas, grouped cross-validation, and the recogniser's independence from earlier clips."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch

pytest.importorskip("librosa")

from toonlab.tts.degrade import degrade_log_mel  # noqa: E402
from toonlab.tts.metrics import (  # noqa: E402
    bootstrap_interval,
    correlation_interval,
    spearman,
    wilson_interval,
)
from toonlab.tts.style_measures import StyleStatistics, prosody_measures, sweep_rank  # noqa: E402


def test_degradation_smooths_and_compresses_but_keeps_the_mean_level():
    rng = np.random.default_rng(0)
    mel = torch.from_numpy(rng.normal(-4.0, 2.0, size=(200, 80))).float()
    out = degrade_log_mel(mel)
    assert out.shape == mel.shape and out.dtype == mel.dtype
    assert float(out.mean()) == pytest.approx(float(mel.mean()), abs=0.02)  # the mean log level is kept
    assert out.std() < 0.5 * mel.std()  # contrast compressed
    assert out.diff(dim=0).abs().mean() < 0.3 * mel.diff(dim=0).abs().mean()  # smoother in time


def _statistics():
    """Two speakers 5 st apart; 'up' is +3 st, +2 st range, +1 syl/s, +6 dB over 'flat' for both."""
    rng = np.random.default_rng(1)
    measures, attrs = [], []
    for spk, base in (("a", 0.0), ("b", 5.0)):
        for style, shift in (("flat", np.zeros(4)), ("up", np.array([3.0, 2.0, 1.0, 6.0]))):
            for _ in range(20):
                measures.append(np.array([base, 6.0, 4.0, -25.0]) + shift + rng.normal(0, 0.3, 4))
                attrs.append({"speaker": spk, "style": style})
    return StyleStatistics.fit(measures, attrs, ["speaker", "style"], "speaker")


def test_style_statistics_decide_after_removing_the_speaker():
    stats = _statistics()
    assert set(stats.means) == {"style"}  # no statistics for the speaker attribute itself
    # speaker b's flat clip has a higher F0 than speaker a's "up" clip, yet is judged flat
    assert stats.decide(np.array([5.0, 6.0, 4.0, -25.0]), "b") == {"style": "flat"}
    assert stats.decide(np.array([3.0, 8.0, 5.0, -19.0]), "a") == {"style": "up"}
    z = stats.zscores(np.array([3.0, 8.0, 5.0, -19.0]), "a", "style")
    assert np.all(np.abs(z["up"]) < 3) and np.all(z["flat"] > 3)


def test_sweep_rank_follows_the_real_order():
    stats = _statistics()
    up = {"flat": np.array([5.0, 6.0, 4.0, -25.0]), "up": np.array([8.0, 8.0, 5.0, -19.0])}
    assert len(sweep_rank(up, "b", stats, "style")) == 4  # two values: every correlation is NaN
    values = ["flat", "mid", "up"]
    stats.means["style"]["mid"] = (stats.means["style"]["flat"] + stats.means["style"]["up"]) / 2
    good = {v: np.array([5.0 + k, 6.0 + k, 4.0 + k, -25.0 + 3 * k]) for k, v in enumerate(values)}
    assert sweep_rank(good, "b", stats, "style") == pytest.approx([1.0] * 4)
    bad = {v: good[w] for v, w in zip(values, reversed(values), strict=True)}
    assert sweep_rank(bad, "b", stats, "style") == pytest.approx([-1.0] * 4)


def test_prosody_measures_see_pitch_rate_and_gain():
    sr, hop = 16000, 200
    t = np.arange(sr) / sr

    def voice(f0: float, gain: float) -> np.ndarray:
        return (gain * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))).astype(np.float32)

    low, high, loud = (
        prosody_measures(voice(f, g), "ba ba ba", sr, hop) for f, g in ((100, 0.1), (200, 0.1), (100, 0.4))
    )
    assert high[0] - low[0] == pytest.approx(12.0, abs=0.5)  # one octave
    assert loud[3] - low[3] == pytest.approx(20 * np.log10(4), abs=0.5)  # gain is kept, not normalised away
    assert low[2] == pytest.approx(3.0, abs=0.1)  # 3 syllables in 1 s


def test_intervals():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    lo, hi = wilson_interval(64, 128)
    assert lo == pytest.approx(0.414, abs=0.002) and hi == pytest.approx(0.586, abs=0.002)
    lo, hi = correlation_interval(0.0, 128)
    assert lo == pytest.approx(-0.174, abs=0.002) and hi == pytest.approx(0.174, abs=0.002)
    x = np.arange(100.0)
    lo, hi = bootstrap_interval(lambda i: float(x[i].mean()), 100)
    assert lo < 49.5 < hi and hi - lo < 15
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)


def test_grouped_cross_validation_keeps_copies_of_a_clip_together():
    """Each clip and its copy share a random label: ungrouped CV can match copies, grouped CV cannot."""
    from toonlab.tts.classifiers import cv_accuracy

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20))
    labels = [str(v) for v in rng.integers(0, 2, 60)]
    feats = np.concatenate([x, x + 0.01 * rng.normal(size=x.shape)])
    y, groups = labels * 2, [f"u{i}" for i in range(60)] * 2

    class NearestNeighbour:  # memorises: it scores well only by finding a clip's own copy
        def __init__(self, a, b):
            self.a, self.b = np.asarray(a), list(b)

        def predict(self, q):
            d = ((np.asarray(q)[:, None] - self.a[None]) ** 2).sum(-1)
            return [self.b[i] for i in d.argmin(1)]

    make = NearestNeighbour

    leaky = cv_accuracy(feats, y, make)["accuracy"]
    grouped = cv_accuracy(feats, y, make, groups=groups)["accuracy"]
    assert leaky > 0.85 and grouped < 0.7


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng renders the test speech")
def test_recogniser_carries_no_state_between_clips(tmp_path):
    pytest.importorskip("pocketsphinx")
    from toonlab.tts.audio import load_wav
    from toonlab.tts.classifiers import Recogniser

    clips = []
    for k, text in enumerate(["the weather is nice today", "open the door please"]):
        path = tmp_path / f"{k}.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True, capture_output=True)
        clips.append(load_wav(path, 16000).numpy())
    rec = Recogniser()
    first = rec.transcribe(clips[0], 16000)
    for _ in range(3):
        rec.transcribe(clips[1], 16000)
    assert rec.transcribe(clips[0], 16000) == first and first


def test_real_audio_cache_is_written_as_it_grows(tone_corpus, tmp_path, monkeypatch):
    """A killed evaluation keeps the features computed so far: the cache is written every SAVE_EVERY entries."""
    from toonlab.tts import judging
    from toonlab.tts.audio import AudioParams
    from toonlab.tts.manifest import Corpus

    class FlatEncoder:  # stands in for GE2E: the cache, not the embedding, is under test
        def embed(self, wav, sample_rate):
            return np.zeros(256)

    monkeypatch.setattr(judging, "SAVE_EVERY", 2)
    corpus = Corpus.load(tone_corpus)
    real = judging.RealAudio(corpus, AudioParams(), FlatEncoder(), tmp_path)
    real.features(corpus.utterances[0])
    assert not real.path.exists()
    real.features(corpus.utterances[1])
    assert real.path.exists()  # written without save()
    again = judging.RealAudio(corpus, AudioParams(), FlatEncoder(), tmp_path)
    assert set(again.cache) == {corpus.utterances[0].id, corpus.utterances[1].id}
    assert again.cache[corpus.utterances[0].id]["prosody"].shape == (4,)
