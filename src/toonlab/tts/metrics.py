"""Objective speech metrics for TTS evaluation: MCD with DTW, F0 tracks and RMSE, word error rate, correlations,
and the per-utterance acoustic features the style classifier reads.

All functions take numpy arrays; audio is a mono float waveform at the model's sample rate and frames use the
model's hop, so a synthesised clip and its real recording are compared on the same grid.

- MCD: mel-cepstra are the DCT-II of the natural-log mel spectrum with the cepstral scaling
  c_k = 1/N sum_n log S_n cos(pi k (n + 1/2) / N), coefficients 1..24 (c0, the level, excluded);
  MCD = 10 / ln 10 * sqrt(2 * sum_k (c_k - c'_k)^2), averaged along the DTW path. A mel filter bank stands in for
  SPTK's warped cepstrum, so values are comparable between our runs, not to the decimal with published MCDs.
- F0: YIN (librosa) between 60 and 600 Hz; a frame is voiced when its RMS is within 30 dB of the clip's peak and
  its zero-crossing rate is below 0.2 (YIN itself has no voicing decision; pYIN was too slow for this CPU).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from toonlab.extras import require

MCD_CONSTANT = 10.0 / math.log(10.0)
F0_MIN, F0_MAX = 60.0, 600.0
VOICED_DB, VOICED_ZCR = 30.0, 0.2
N_CEPSTRA = 25


def mel_cepstra(log_mel: np.ndarray, n: int = N_CEPSTRA) -> np.ndarray:
    """(T, n_mels) natural-log mel spectrum -> (T, n - 1) mel-cepstra c1..c_{n-1}."""
    from scipy.fft import dct

    return dct(log_mel, type=2, axis=-1)[:, 1:n] / (2 * log_mel.shape[-1])  # scipy's DCT-II is 2 * sum


def dtw_path(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Frame sequences (Ta, D), (Tb, D) -> (P, 2) monotonic alignment path (index into a, index into b)."""
    from scipy.spatial.distance import cdist

    librosa = require("librosa")
    _, path = librosa.sequence.dtw(C=cdist(a, b))
    return path[::-1].copy()


def mcd(ref_log_mel: np.ndarray, syn_log_mel: np.ndarray) -> tuple[float, np.ndarray]:
    """Mel-cepstral distortion (dB) between two (T, n_mels) log-mels after DTW; also returns the path (P, 2)."""
    a, b = mel_cepstra(ref_log_mel), mel_cepstra(syn_log_mel)
    path = dtw_path(a, b)
    diff = a[path[:, 0]] - b[path[:, 1]]  # (P, n - 1)
    return float(MCD_CONSTANT * np.mean(np.sqrt(2.0 * np.sum(diff**2, axis=1)))), path


@dataclass
class F0Track:
    f0: np.ndarray  # (T,) Hz, YIN estimate in every frame
    voiced: np.ndarray  # (T,) bool
    rms_db: np.ndarray  # (T,) frame energy in dB relative to the clip's peak frame
    peak_db: float = 0.0  # the peak frame's energy in dB re full scale (rms_db + peak_db = absolute level)


def f0_track(wav: np.ndarray, sample_rate: int, hop_length: int, frame_length: int = 1024) -> F0Track:
    """YIN F0 and an energy / zero-crossing voicing decision on the model's frame grid (see module docstring)."""
    librosa = require("librosa")
    wav = np.asarray(wav, dtype=np.float32)
    if len(wav) < frame_length:
        wav = np.pad(wav, (0, frame_length - len(wav)))
    f0 = librosa.yin(wav, fmin=F0_MIN, fmax=F0_MAX, sr=sample_rate, frame_length=frame_length, hop_length=hop_length)
    rms = librosa.feature.rms(y=wav, frame_length=frame_length, hop_length=hop_length)[0]
    zcr = librosa.feature.zero_crossing_rate(wav, frame_length=frame_length, hop_length=hop_length)[0]
    n = min(len(f0), len(rms), len(zcr))
    peak = max(float(rms[:n].max()), 1e-8)
    rms_db = 20 * np.log10(np.maximum(rms[:n], 1e-8) / peak)
    voiced = (rms_db > -VOICED_DB) & (zcr[:n] < VOICED_ZCR)
    return F0Track(f0[:n], voiced, rms_db, float(20 * np.log10(peak)))


def f0_rmse(ref: F0Track, syn: F0Track, path: np.ndarray) -> float:
    """RMSE in Hz over path pairs voiced in both tracks (NaN when none is)."""
    i = np.clip(path[:, 0], 0, len(ref.f0) - 1)
    j = np.clip(path[:, 1], 0, len(syn.f0) - 1)
    both = ref.voiced[i] & syn.voiced[j]
    if not both.any():
        return float("nan")
    return float(np.sqrt(np.mean((ref.f0[i][both] - syn.f0[j][both]) ** 2)))


def normalise_words(text: str) -> list[str]:
    """Lower-case words with punctuation removed (apostrophes inside words kept)."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower())


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER: total word edits / total reference words, after `normalise_words`."""
    errors = words = 0
    for r, h in zip(refs, hyps, strict=True):
        rw = normalise_words(r)
        errors += edit_distance(rw, normalise_words(h))
        words += len(rw)
    return errors / max(words, 1)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def partial_correlation(x: Sequence[float], y: Sequence[float], control: Sequence[float]) -> float:
    """Pearson correlation of x and y after removing a linear fit on `control` from each."""
    if any(np.std(np.asarray(v, float)) == 0 for v in (x, y, control)) or len(control) < 4:
        return float("nan")
    z = np.stack([np.asarray(control, float), np.ones(len(control))], axis=1)

    def residual(v: Sequence[float]) -> np.ndarray:
        v = np.asarray(v, float)
        return v - z @ np.linalg.lstsq(z, v, rcond=None)[0]

    return pearson(residual(x), residual(y))


def syllables(text: str) -> int:
    """Vowel groups in the text: a language-agnostic syllable count for speaking rate."""
    return max(1, len(re.findall(r"[aeiouyáéíóúůýěäöüàèìòù]+", text.lower())))


def style_features(wav: np.ndarray, log_mel: np.ndarray, text: str, sample_rate: int, hop_length: int) -> np.ndarray:
    """Prosodic and spectral statistics of one utterance -> (11 + 2 * n_mels,) feature vector.

    F0 (log Hz over voiced frames): mean, std, 5th and 95th percentile, range; voiced fraction; energy (dB):
    mean, std and 90th percentile over frames within 40 dB of the peak; speaking rate (syllables per second;
    never the bare duration, which would let a length-copying model pass as style-following); spectral flux;
    then the mean and std of each log-mel band.
    """
    track = f0_track(wav, sample_rate, hop_length)
    lf0 = np.log(track.f0[track.voiced]) if track.voiced.sum() >= 3 else np.log(np.full(3, 100.0))
    active = track.rms_db[track.rms_db > -40.0]
    seconds = len(wav) / sample_rate
    flux = float(np.mean(np.abs(np.diff(log_mel, axis=0)))) if len(log_mel) > 1 else 0.0
    prosody = [
        lf0.mean(),
        lf0.std(),
        np.percentile(lf0, 5),
        np.percentile(lf0, 95),
        np.percentile(lf0, 95) - np.percentile(lf0, 5),
        track.voiced.mean(),
        active.mean(),
        active.std(),
        np.percentile(active, 90),
        syllables(text) / max(seconds, 1e-3),
        flux,
    ]
    return np.concatenate([np.asarray(prosody, np.float64), log_mel.mean(0), log_mel.std(0)])


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Rank correlation (average ranks for ties); NaN when either side is constant or shorter than 3."""
    from scipy.stats import rankdata

    return pearson(rankdata(x), rankdata(y))


# ---------------------------------------------------------------- intervals (95%)

Z95 = 1.959964


def wilson_interval(hits: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion hits / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return (0.0 if hits == 0 else centre - half), (1.0 if hits == n else centre + half)


def correlation_interval(r: float, n: int, controls: int = 0) -> tuple[float, float]:
    """95% Fisher-z interval of a (partial) correlation over n pairs with `controls` variables partialled out."""
    if r != r or n - controls <= 3:
        return float("nan"), float("nan")
    z, half = math.atanh(max(-0.999999, min(0.999999, r))), Z95 / math.sqrt(n - controls - 3)
    return math.tanh(z - half), math.tanh(z + half)


def bootstrap_interval(
    stat: Callable[[np.ndarray], float], n: int, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile bootstrap interval of `stat(indices)` over n cases resampled with replacement."""
    if n < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)], float)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))
