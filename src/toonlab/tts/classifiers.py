"""The judges of a TTS evaluation: a speaker encoder, attribute classifiers trained on real audio, a recogniser,
and cross-validated probes on model embeddings.

- `SpeakerEncoder`: Resemblyzer's GE2E encoder (its weights ship inside the wheel; nothing is downloaded), 256-d,
  L2-normalised utterance embeddings.
- `NearestCentroid`: class centroids of L2-normalised embeddings; predicts the class of highest cosine.
- `FeatureClassifier`: standardised features -> multinomial logistic regression (scikit-learn).
- `Recogniser`: pocketsphinx with its bundled en-us acoustic model, language model and dictionary; a fresh decoder
  for every clip, so no adaptation state carries from one clip to the next.
- `cv_accuracy` / `probe_accuracy`: stratified k-fold accuracy of a classifier (logistic regression for probes).
- `Judge` / `select_judge`: the judge of one attribute, picked among candidate feature sets and classifiers by
  cross-validated accuracy on training audio only (GE2E suits clean voices; on short, effect-laden game voices
  spectral statistics identify the speaker far better).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toonlab.extras import require


class SpeakerEncoder:
    """GE2E speaker embeddings (Resemblyzer, CPU)."""

    def __init__(self) -> None:
        resemblyzer = require("resemblyzer")
        self._preprocess = resemblyzer.preprocess_wav
        self.encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)

    def embed(self, wav: np.ndarray, sample_rate: int) -> np.ndarray:
        """(samples,) float waveform -> (256,) unit-norm embedding. Resemblyzer's VAD trimming is skipped when it
        would leave less than 0.3 s (short or vocoded clips)."""
        wav = np.asarray(wav, dtype=np.float32)
        processed = self._preprocess(wav, source_sr=sample_rate)
        if len(processed) < 0.3 * 16000:
            librosa = require("librosa")
            processed = librosa.resample(wav, orig_sr=sample_rate, target_sr=16000) if sample_rate != 16000 else wav
            processed = processed / max(float(np.abs(processed).max()), 1e-4) * 0.5
            processed = np.pad(processed, (0, max(0, 16000 - len(processed))))
        return np.asarray(self.encoder.embed_utterance(processed), dtype=np.float64)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class NearestCentroid:
    """Cosine nearest-centroid classifier over embeddings (the speaker judge)."""

    def __init__(self, embeddings: np.ndarray, labels: Sequence[str]) -> None:
        self.classes = sorted(set(labels))
        x = _unit(np.asarray(embeddings, float))
        y = np.asarray(labels)
        self.centroids = _unit(np.stack([x[y == c].mean(0) for c in self.classes]))  # (C, D)

    def centroid(self, label: str) -> np.ndarray:
        return self.centroids[self.classes.index(label)]

    def cosines(self, embeddings: np.ndarray) -> np.ndarray:
        """(N, D) -> (N, C) cosine to each class centroid."""
        return _unit(np.atleast_2d(embeddings)) @ self.centroids.T

    def predict(self, embeddings: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.cosines(embeddings).argmax(1)]


class FeatureClassifier:
    """Standardised features -> logistic regression (the judge of non-speaker attributes such as style)."""

    def __init__(self, features: np.ndarray, labels: Sequence[str], c: float = 1.0, seed: int = 0) -> None:
        pipeline = require("sklearn.pipeline")
        preprocessing = require("sklearn.preprocessing")
        linear = require("sklearn.linear_model")
        self.model = pipeline.make_pipeline(
            preprocessing.StandardScaler(), linear.LogisticRegression(C=c, max_iter=3000, random_state=seed)
        )
        self.model.fit(np.asarray(features, float), list(labels))
        self.classes = [str(c) for c in self.model.classes_]

    def predict(self, features: np.ndarray) -> list[str]:
        return [str(p) for p in self.model.predict(np.atleast_2d(features))]


def accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)])) if truth else float("nan")


Classifier = NearestCentroid | FeatureClassifier


def cv_accuracy(
    features: np.ndarray,
    labels: Sequence[str],
    make: Callable[[np.ndarray, Sequence[str]], Classifier],
    folds: int = 5,
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> dict[str, float]:
    """Stratified k-fold accuracy of `make(features, labels)`, with the majority-class rate as chance (folds
    shrink to the smallest class size). With `groups` (e.g. the utterance each augmented copy came from), the
    copies of one group never fall on both sides of a fold."""
    model_selection = require("sklearn.model_selection")
    labels = np.asarray(labels)
    _, counts = np.unique(labels, return_counts=True)
    chance = float(counts.max() / counts.sum())
    per_group = 1 if groups is None else max(1, len(labels) // len(set(groups)))
    k = int(min(folds, counts.min() // per_group))
    if len(counts) < 2 or k < 2:
        return {"accuracy": float("nan"), "chance": chance, "folds": 0}
    if groups is None:
        splits = model_selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(features, labels)
    else:
        splitter = model_selection.StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(features, labels, groups=list(groups))
    hits = []
    for train, test in splits:
        clf = make(features[train], labels[train])
        hits.extend(p == t for p, t in zip(clf.predict(features[test]), labels[test], strict=True))
    return {"accuracy": float(np.mean(hits)), "chance": chance, "folds": k}


def probe_accuracy(embeddings: np.ndarray, labels: Sequence[str], folds: int = 5, seed: int = 0) -> dict[str, float]:
    """Cross-validated accuracy of logistic regression from embeddings to labels."""
    return cv_accuracy(embeddings, labels, lambda x, y: FeatureClassifier(x, y, seed=seed), folds, seed)


# Judge candidates: name -> (feature keys concatenated in order, classifier). Feature keys name the per-clip
# features: "speaker" = (256,) GE2E embedding, "style" = (F,) prosody and mel statistics.
GE2E_JUDGE = "GE2E nearest centroid"
FEATURE_JUDGE = "prosody+mel logistic regression"
JUDGE_CANDIDATES: dict[str, tuple[tuple[str, ...], Callable[[np.ndarray, Sequence[str]], Classifier]]] = {
    GE2E_JUDGE: (("speaker",), NearestCentroid),
    FEATURE_JUDGE: (("style",), FeatureClassifier),
    "GE2E+prosody+mel logistic regression": (("speaker", "style"), FeatureClassifier),
}


def stack_features(clips: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> np.ndarray:
    """Per-clip feature dicts (arrays or CPU tensors) -> (N, D) matrix of the named features side by side."""
    return np.stack([np.concatenate([np.asarray(c[k], float).ravel() for k in keys]) for c in clips])


@dataclass
class Judge:
    """One attribute's judge: a fitted classifier over named per-clip features."""

    name: str
    keys: tuple[str, ...]
    model: Classifier
    cv: dict[str, float] = field(default_factory=dict)  # candidate name -> cross-validated accuracy

    def predict(self, clips: Sequence[Mapping[str, Any]]) -> list[str]:
        return self.model.predict(stack_features(clips, self.keys))


def select_judge(
    clips: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    prefer: Sequence[str],
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> Judge:
    """Fit the candidate with the best cross-validated accuracy on these (training) clips; ties go to the
    earlier name in `prefer` (every candidate is tried, in `prefer` order first). `groups` as in `cv_accuracy`."""
    order = [*prefer, *(n for n in JUDGE_CANDIDATES if n not in prefer)]
    cv = {}
    for name in order:
        keys, make = JUDGE_CANDIDATES[name]
        cv[name] = cv_accuracy(stack_features(clips, keys), labels, make, seed=seed, groups=groups)["accuracy"]
    best = max(order, key=lambda n: (np.nan_to_num(cv[n], nan=-1.0), -order.index(n)))
    keys, make = JUDGE_CANDIDATES[best]
    return Judge(best, keys, make(stack_features(clips, keys), labels), cv)


class Recogniser:
    """Offline English ASR (pocketsphinx 5, bundled en-us model) on 16 kHz audio."""

    sample_rate = 16000

    def __init__(self) -> None:
        self._pocketsphinx = require("pocketsphinx")

    def transcribe(self, wav: np.ndarray, sample_rate: int) -> str:
        """One clip -> its transcript, by a decoder built for this clip alone (no state from earlier clips)."""
        wav = np.asarray(wav, dtype=np.float32)
        if sample_rate != self.sample_rate:
            wav = require("librosa").resample(wav, orig_sr=sample_rate, target_sr=self.sample_rate)
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder = self._pocketsphinx.Decoder(samprate=self.sample_rate, loglevel="FATAL")
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
