"""Model-free style measures: four prosodic figures of a clip, compared with each style's real statistics.

`prosody_measures` -> (4,): F0 mean (semitones re 100 Hz, over voiced frames), F0 range (semitones between the
5th and 95th percentile), speaking rate (syllables per second) and energy (mean frame level in dB re full scale
over frames within 30 dB of the clip's peak; absolute, so a style's gain counts).

`StyleStatistics` holds, from real training clips, each speaker's mean of the four measures and, for every other
attribute (e.g. style), each value's mean and the pooled within-value spread of the speaker-normalised measures
(measure - the speaker's mean). A clip is then placed against every style: z-scores per measure, and the nearest
style (standardised distance over the four measures): a decision that involves no trained classifier.

`sweep_rank` is the style-sweep rank test: one sentence and one speaker, one output per style; per measure, the
Spearman correlation between the outputs' speaker-normalised values and the styles' real means (1 = the outputs
order the styles as real speech does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toonlab.tts.metrics import f0_track, spearman, syllables

MEASURES = ("F0 mean (st)", "F0 range (st)", "rate (syl/s)", "energy (dB)")
ACTIVE_DB = 30.0


def prosody_measures(wav: np.ndarray, text: str, sample_rate: int, hop_length: int) -> np.ndarray:
    """(samples,) waveform and its text -> (4,) [F0 mean st, F0 range st, syllables/s, energy dB]."""
    track = f0_track(wav, sample_rate, hop_length)
    st = 12 * np.log2(track.f0[track.voiced] / 100.0) if track.voiced.sum() >= 3 else np.zeros(3)
    level = track.rms_db[track.rms_db > -ACTIVE_DB] + track.peak_db
    seconds = max(len(wav) / sample_rate, 1e-3)
    return np.array(
        [np.mean(st), np.percentile(st, 95) - np.percentile(st, 5), syllables(text) / seconds, np.mean(level)],
        np.float64,
    )


@dataclass
class StyleStatistics:
    speaker_attr: str | None
    speaker_means: dict[str, np.ndarray]  # speaker -> (4,)
    global_mean: np.ndarray  # (4,) over every clip
    means: dict[str, dict[str, np.ndarray]]  # attribute -> value -> (4,) mean of speaker-normalised measures
    spread: dict[str, np.ndarray]  # attribute -> (4,) pooled within-value standard deviation

    @classmethod
    def fit(
        cls,
        measures: Sequence[np.ndarray],
        attrs: Sequence[Mapping[str, str]],
        attributes: Sequence[str],
        speaker_attr: str | None,
    ) -> StyleStatistics:
        x = np.stack(measures)  # (N, 4)
        speakers = [a[speaker_attr] for a in attrs] if speaker_attr else ["" for _ in attrs]
        spk_means = {s: x[[t == s for t in speakers]].mean(0) for s in sorted(set(speakers))}
        z = x - np.stack([spk_means[s] for s in speakers])
        means, spread = {}, {}
        for attr in attributes:
            if attr == speaker_attr:
                continue
            values = np.array([a[attr] for a in attrs])
            means[attr] = {v: z[values == v].mean(0) for v in sorted(set(values))}
            resid = z - np.stack([means[attr][v] for v in values])
            spread[attr] = np.maximum(resid.std(0), 1e-3)
        return cls(speaker_attr, spk_means, x.mean(0), means, spread)

    def normalised(self, measures: np.ndarray, speaker: str | None) -> np.ndarray:
        """(4,) -> (4,) measures minus the speaker's real mean (the global mean for an unknown speaker)."""
        return np.asarray(measures, float) - self.speaker_means.get(speaker or "", self.global_mean)

    def zscores(self, measures: np.ndarray, speaker: str | None, attr: str) -> dict[str, np.ndarray]:
        """{value: (4,) z-score of the clip against that value's real statistics}."""
        z = self.normalised(measures, speaker)
        return {v: (z - m) / self.spread[attr] for v, m in self.means[attr].items()}

    def decide(self, measures: np.ndarray, speaker: str | None) -> dict[str, str]:
        """{attribute: the value whose real statistics are nearest (standardised distance over the measures)}."""
        return {
            attr: min(scores.items(), key=lambda kv: float(np.sum(kv[1] ** 2)))[0]
            for attr in self.means
            for scores in [self.zscores(measures, speaker, attr)]
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "measures": list(MEASURES),
            "means": {a: {v: m.tolist() for v, m in vals.items()} for a, vals in self.means.items()},
            "spread": {a: s.tolist() for a, s in self.spread.items()},
        }


def sweep_rank(
    outputs: Mapping[str, np.ndarray], speaker: str | None, stats: StyleStatistics, attr: str
) -> list[float]:
    """{value: (4,) measures of the output for that value} of one sweep -> per-measure Spearman correlation with
    the values' real means (NaN where the outputs do not vary)."""
    values = [v for v in stats.means[attr] if v in outputs]
    got = np.stack([stats.normalised(outputs[v], speaker) for v in values])  # (V, 4)
    real = np.stack([stats.means[attr][v] for v in values])  # (V, 4)
    return [spearman(got[:, k], real[:, k]) for k in range(len(MEASURES))]
