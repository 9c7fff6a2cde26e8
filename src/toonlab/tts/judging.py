"""Real-audio judges of a TTS evaluation: per-utterance features of real recordings in three domains, and the
judges built from them.

Domains of a real recording (each cached in `CORPUS/features/eval-<domain>-<key>.pt`):
- `real`: the recording itself;
- `vocoded`: its mel through the model's vocoder (copy synthesis: real speech in the outputs' domain);
- `degraded`: its mel smoothed and compressed (`toonlab.tts.degrade`), then through the vocoder: what an
  undertrained decoder does to speech, without changing who speaks, in what style, or what is said.

Judges are trained on the training split in the judging domain (vocoded, or real with `vocoded=False`) plus the
degraded copies of the same clips (grouped in cross-validation, so a copy never tests its own original), so that
smoothness cannot decide a class. Every judge is then scored on held-out utterances in all three domains.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toonlab.io import atomic_path
from toonlab.tts.audio import AudioParams, Vocoder, load_wav, mel_spectrogram
from toonlab.tts.classifiers import (
    FEATURE_JUDGE,
    GE2E_JUDGE,
    Judge,
    NearestCentroid,
    Recogniser,
    SpeakerEncoder,
    accuracy,
    select_judge,
    stack_features,
)
from toonlab.tts.degrade import degrade_log_mel
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.metrics import style_features
from toonlab.tts.style_measures import StyleStatistics, prosody_measures

SPEAKER = "speaker"
FEATURES_VERSION = "2"
DOMAINS = ("real", "vocoded", "degraded")
SAVE_EVERY = 32  # new cache entries between writes of the cache file


def clip_features(
    wav: np.ndarray, mel: np.ndarray, text: str, encoder: SpeakerEncoder, params: AudioParams
) -> dict[str, Any]:
    """One clip -> {'speaker': (256,) GE2E, 'style': (F,) statistics, 'prosody': (4,) measures, 'seconds'}."""
    return {
        "speaker": torch.from_numpy(encoder.embed(wav, params.sample_rate)),
        "style": torch.from_numpy(style_features(wav, mel, text, params.sample_rate, params.hop_length)),
        "prosody": torch.from_numpy(prosody_measures(wav, text, params.sample_rate, params.hop_length)),
        "seconds": torch.tensor(len(wav) / params.sample_rate),
    }


class RealAudio:
    """Per-utterance features of real recordings in one domain (see the module docstring), cached."""

    def __init__(
        self,
        corpus: Corpus,
        params: AudioParams,
        encoder: SpeakerEncoder,
        cache_dir: Path | None,
        vocoder: Vocoder | None = None,
        domain: str = "real",
    ) -> None:
        if domain not in DOMAINS or (domain != "real" and vocoder is None):
            raise ValueError(f"domain {domain!r} needs a vocoder and is one of {DOMAINS}")
        self.corpus, self.params, self.encoder, self.vocoder, self.domain = corpus, params, encoder, vocoder, domain
        vocoder_key = vocoder.name if domain != "real" else ""
        key = hashlib.sha1(json.dumps([params.to_dict(), FEATURES_VERSION, vocoder_key]).encode()).hexdigest()[:10]
        self.path = (cache_dir or corpus.root / "features") / f"eval-{domain}-{key}.pt"
        self.cache: dict[str, dict[str, Any]] = torch.load(self.path, weights_only=True) if self.path.exists() else {}
        self._dirty, self._new = False, 0

    def audio(self, u: Utterance) -> tuple[torch.Tensor, torch.Tensor]:
        """The utterance in this domain: (samples,) waveform and its (T, n_mels) log-mel."""
        wav = load_wav(u.audio, self.params.sample_rate)
        if self.domain != "real":
            mel = mel_spectrogram(wav, self.params)
            wav = self.vocoder(degrade_log_mel(mel) if self.domain == "degraded" else mel)
        return wav, mel_spectrogram(wav, self.params)

    def features(self, u: Utterance) -> dict[str, Any]:
        """`clip_features` of one utterance in this domain."""
        if u.id not in self.cache:
            wav, mel = self.audio(u)
            self.cache[u.id] = clip_features(wav.numpy(), mel.numpy(), u.text, self.encoder, self.params)
            self._mark()
        return self.cache[u.id]

    def _mark(self) -> None:
        """Note a new entry; every `SAVE_EVERY` of them the cache is written, so a killed run keeps its work."""
        self._dirty = True
        self._new += 1
        if self._new % SAVE_EVERY == 0:
            self.save()

    def transcript(self, u: Utterance, recogniser: Recogniser) -> str:
        entry = self.features(u)
        if "asr" not in entry:
            entry["asr"] = recogniser.transcribe(self.audio(u)[0].numpy(), self.params.sample_rate)
            self._mark()
        return entry["asr"]

    def save(self) -> None:
        """Write the cache atomically, merged with what another evaluation sharing it saved meanwhile (entries of
        both survive; each process writes through its own temporary file)."""
        if self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                for uid, entry in torch.load(self.path, weights_only=True).items():
                    mine = self.cache.setdefault(uid, entry)
                    if mine is not entry:  # both have the clip: keep a transcript either one made
                        mine.update({k: v for k, v in entry.items() if k not in mine})
            with atomic_path(self.path) as tmp:
                torch.save(self.cache, tmp)
            self._dirty = False


def real_domains(
    corpus: Corpus, params: AudioParams, encoder: SpeakerEncoder, vocoder: Vocoder, cache_dir: Path | None = None
) -> dict[str, RealAudio]:
    """{domain: RealAudio} for the three domains of `DOMAINS`."""
    return {d: RealAudio(corpus, params, encoder, cache_dir, vocoder, d) for d in DOMAINS}


def balanced_sample(utts: Sequence[Utterance], attributes: Sequence[str], per_cell: int, seed: int) -> list[Utterance]:
    """Up to `per_cell` utterances of every combination of attribute values, seeded."""
    rng = random.Random(seed)
    cells: dict[tuple[str, ...], list[Utterance]] = {}
    for u in sorted(utts, key=lambda u: u.id):
        cells.setdefault(tuple(u.attrs[a] for a in attributes), []).append(u)
    return [u for cell in cells.values() for u in rng.sample(cell, min(per_cell, len(cell)))]


@dataclass
class Judges:
    per_attribute: dict[str, Judge]  # attribute -> its judge (picked by cross-validation on the training split)
    centroids: NearestCentroid | None  # GE2E speaker centroids (the cosine measures), when there is a speaker
    held_out_accuracy: dict[str, dict[str, float]]  # attribute -> {domain: accuracy on held-out utterances}
    statistics: StyleStatistics  # model-free: per-speaker and per-value prosody statistics of the training clips
    n_train: int
    n_held_out: int
    domain: str  # the judging domain ("vocoded" or "real"), trained together with "degraded"
    held_out: list[Utterance] = field(default_factory=list)  # the held-out utterances the accuracies are over

    def judge(self, clip: dict[str, Any]) -> dict[str, str]:
        """`clip_features` of one clip -> {attribute: judged value}."""
        return {attr: j.predict([clip])[0] for attr, j in self.per_attribute.items()}


def _load(domain: RealAudio, utts: Sequence[Utterance]) -> list[dict[str, Any]]:
    try:  # features computed before an unreadable clip stay cached for the rerun
        return [domain.features(u) for u in utts]
    finally:
        domain.save()


def build_judges(
    domains: dict[str, RealAudio], per_cell: int, seed: int, vocoded: bool = True, augment: bool = True
) -> Judges:
    """A judge per attribute from the training split (judging domain + degraded copies unless `augment` is off;
    the candidate of best grouped cross-validated accuracy; speaker prefers GE2E, other attributes prosody and mel
    statistics), scored on held-out utterances in every domain present."""
    judging = "vocoded" if vocoded and "vocoded" in domains else "real"
    corpus = domains[judging].corpus
    attrs = corpus.attributes
    train = balanced_sample(corpus.split("train"), attrs, per_cell, seed)
    held = balanced_sample(corpus.split("test"), attrs, max(1, per_cell // 2), seed)
    train_domains = [d for d in (judging, "degraded") if d in domains and (augment or d == judging)]
    clips = [c for d in train_domains for c in _load(domains[d], train)]
    groups = [u.id for _ in train_domains for u in train]
    held_clips = {d: _load(r, held) for d, r in domains.items()}
    per_attribute: dict[str, Judge] = {}
    centroids = None
    held_acc: dict[str, dict[str, float]] = {}
    for attr in attrs:
        y_train = [u.attrs[attr] for _ in train_domains for u in train]
        if len(set(y_train)) < 2:
            continue
        prefer = [GE2E_JUDGE] if attr == SPEAKER else [FEATURE_JUDGE]
        judge = per_attribute[attr] = select_judge(clips, y_train, prefer, seed, groups)
        truth = [u.attrs[attr] for u in held]
        held_acc[attr] = {d: accuracy(truth, judge.predict(c)) for d, c in held_clips.items()}
        if attr == SPEAKER:
            n = len(train)  # centroids of the judging domain's clean clips
            centroids = NearestCentroid(stack_features(clips[:n], ["speaker"]), y_train[:n])
    own = _load(domains[judging], train)
    stats = StyleStatistics.fit(
        [c["prosody"].numpy() for c in own], [u.attrs for u in train], attrs, SPEAKER if SPEAKER in attrs else None
    )
    return Judges(per_attribute, centroids, held_acc, stats, len(train), len(held), judging, held)
