"""`toonlab tts evaluate RUN --corpus DIR`: control, fidelity, intelligibility, length leakage and embedding probes
of a trained run, measured on held-out sentences.

Crossed cases (seeded sample of `n_cases`): a held-out target utterance T = (speaker s, style e, sentence t); for
each attribute a, a reference that shares a with T and differs from it in every other attribute, on another
sentence (from the held-out split when it has one, else from the whole corpus): speaker reference A = (s, not e),
style reference B = (not s, e). The model speaks t with each sub-encoder fed the reference of its attribute (a
single-GST model has one sub-encoder, for "style", so it hears B only). T itself is the real recording the output
should match.

Judges (`toonlab.tts.classifiers`), all built from real corpus audio (by default passed through the model's vocoder
first, so the judges hear real speech in the outputs' domain; Griffin-Lim alone moves the style features enough to
fool a classifier trained on clean recordings):
- per attribute, the best of three candidates by cross-validated accuracy on the training split: nearest centroid of
  GE2E embeddings (preferred on a tie for speaker), logistic regression on prosodic and mel statistics
  (`metrics.style_features`; preferred for other attributes), or logistic regression on both; fitted on the
  training split and scored on the held-out split (its own accuracy is reported);
- speaker cosines (GE2E): output to A and to B, and to their speakers' centroids;
- fidelity: MCD (DTW) and F0 RMSE against T, next to the vocoder floor (T's own mel through the same vocoder);
- the same judges on that vocoded T: what they can see through the vocoder at best (the output's ceiling);
- intelligibility: pocketsphinx WER of the outputs next to the WER of the real recordings T (and vocoded T);
- length leakage: correlation of output duration with each reference's duration, raw and with T's duration
  partialled out (T's duration carries the sentence length and the legitimate rate of the target style);
- probes: each sub-encoder's embedding of held-out real utterances -> each attribute, cross-validated.

Out folder: `report.md`, `report.json`, `cases.jsonl` (one row per case), `confusion_<attr>.png`, `audio/`.
Real-audio features are cached in `CORPUS/features/eval-real-<key>.pt`.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toonlab.tts.audio import AudioParams, Vocoder, load_wav, mel_spectrogram
from toonlab.tts.classifiers import (
    FEATURE_JUDGE,
    GE2E_JUDGE,
    Judge,
    NearestCentroid,
    Recogniser,
    SpeakerEncoder,
    accuracy,
    probe_accuracy,
    select_judge,
    stack_features,
)
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.metrics import f0_rmse, f0_track, mcd, partial_correlation, pearson, style_features, word_error_rate
from toonlab.tts.style import ReferenceStyle
from toonlab.tts.synthesize import Synthesizer

SPEAKER = "speaker"
FEATURES_VERSION = "1"


@dataclass(frozen=True)
class Case:
    """A crossed synthesis: speak `target`'s sentence with references[attr] for each attribute."""

    target: Utterance
    references: dict[str, Utterance]


def _pool_for(target: Utterance, attr: str, pool: Sequence[Utterance], attributes: Sequence[str]) -> list[Utterance]:
    """Utterances sharing `attr` with the target, differing in as many other attributes as possible, on another
    sentence when one exists."""
    same = [u for u in pool if u.attrs[attr] == target.attrs[attr] and u.id != target.id]
    others = [a for a in attributes if a != attr]
    if not same:
        return []

    def score(u: Utterance) -> tuple[int, int]:
        return sum(u.attrs[a] != target.attrs[a] for a in others), int(u.sentence_id != target.sentence_id)

    best = max(score(u) for u in same)
    return [u for u in same if score(u) == best]


def crossed_cases(corpus: Corpus, n_cases: int, seed: int = 0) -> list[Case]:
    """A seeded sample of up to `n_cases` crossed cases over the held-out split (see the module docstring)."""
    rng = random.Random(seed)
    held_out = corpus.split("test")
    if not held_out:
        raise ValueError(f"{corpus.root}: the corpus has no held-out (test) utterances to evaluate on")
    targets = rng.sample(held_out, min(n_cases, len(held_out)))
    cases = []
    for t in sorted(targets, key=lambda u: u.id):
        refs = {}
        for attr in corpus.attributes:
            pool = _pool_for(t, attr, held_out, corpus.attributes) or _pool_for(
                t, attr, corpus.utterances, corpus.attributes
            )
            if not pool:
                break
            refs[attr] = rng.choice(sorted(pool, key=lambda u: u.id))
        if len(refs) == len(corpus.attributes):
            cases.append(Case(t, refs))
    return cases


# ---------------------------------------------------------------- real-audio judges


class RealAudio:
    """Per-utterance features of real recordings (speaker embedding, style features, transcript), cached.

    With a `vocoder`, the features are taken from the recording's mel passed through it (copy synthesis), so
    judges built on them see real audio in the same vocoder domain as the model's outputs; transcripts are always
    of the recording itself."""

    def __init__(
        self,
        corpus: Corpus,
        params: AudioParams,
        encoder: SpeakerEncoder,
        cache_dir: Path | None,
        vocoder: Vocoder | None = None,
    ) -> None:
        self.corpus, self.params, self.encoder, self.vocoder = corpus, params, encoder, vocoder
        domain = repr(sorted(vars(vocoder).items(), key=str)) if vocoder is not None else "real"
        key = hashlib.sha1(json.dumps([params.to_dict(), FEATURES_VERSION, domain]).encode()).hexdigest()[:10]
        self.path = (cache_dir or corpus.root / "features") / f"eval-real-{key}.pt"
        self.cache: dict[str, dict[str, Any]] = torch.load(self.path, weights_only=True) if self.path.exists() else {}
        self._dirty = False

    def features(self, u: Utterance) -> dict[str, Any]:
        """{'speaker': (256,), 'style': (F,), 'seconds': float} tensors for one real utterance."""
        if u.id not in self.cache:
            wav = load_wav(u.audio, self.params.sample_rate)
            if self.vocoder is not None:
                wav = self.vocoder(mel_spectrogram(wav, self.params))
            mel = mel_spectrogram(wav, self.params).numpy()
            x = wav.numpy()
            self.cache[u.id] = {
                "speaker": torch.from_numpy(self.encoder.embed(x, self.params.sample_rate)),
                "style": torch.from_numpy(
                    style_features(x, mel, u.text, self.params.sample_rate, self.params.hop_length)
                ),
                "seconds": torch.tensor(len(x) / self.params.sample_rate),
            }
            self._dirty = True
        return self.cache[u.id]

    def transcript(self, u: Utterance, recogniser: Recogniser) -> str:
        entry = self.features(u)
        if "asr" not in entry:
            entry["asr"] = recogniser.transcribe(load_wav(u.audio, recogniser.sample_rate).numpy(), 16000)
            self._dirty = True
        return entry["asr"]

    def save(self) -> None:
        if self._dirty:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            torch.save(self.cache, tmp)
            tmp.replace(self.path)
            self._dirty = False


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
    held_out_accuracy: dict[str, float]
    n_train: int
    n_held_out: int

    def judge(
        self, wav: np.ndarray, mel: np.ndarray, text: str, encoder: SpeakerEncoder, params: AudioParams
    ) -> tuple[dict[str, str], np.ndarray]:
        """One clip -> ({attribute: judged value}, its (256,) speaker embedding)."""
        clip = {
            "speaker": encoder.embed(wav, params.sample_rate),
            "style": style_features(wav, mel, text, params.sample_rate, params.hop_length),
        }
        return {attr: j.predict([clip])[0] for attr, j in self.per_attribute.items()}, clip["speaker"]


def build_judges(real: RealAudio, per_cell: int, seed: int) -> Judges:
    """A judge per attribute from the training split (the candidate of best cross-validated accuracy there;
    speaker prefers GE2E, other attributes prosody and mel statistics), and its accuracy on held-out audio."""
    corpus = real.corpus
    attrs = corpus.attributes
    train = balanced_sample(corpus.split("train"), attrs, per_cell, seed)
    held = balanced_sample(corpus.split("test"), attrs, max(1, per_cell // 2), seed)
    try:  # features computed before an unreadable clip stay cached for the rerun
        clips_train = [real.features(u) for u in train]  # {"speaker": (256,), "style": (F,), ...} tensors
        clips_held = [real.features(u) for u in held]
    finally:
        real.save()
    per_attribute: dict[str, Judge] = {}
    centroids = None
    held_acc: dict[str, float] = {}
    for attr in attrs:
        y_train = [u.attrs[attr] for u in train]
        if len(set(y_train)) < 2:
            continue
        prefer = [GE2E_JUDGE] if attr == SPEAKER else [FEATURE_JUDGE]
        per_attribute[attr] = select_judge(clips_train, y_train, prefer, seed)
        held_acc[attr] = accuracy([u.attrs[attr] for u in held], per_attribute[attr].predict(clips_held))
        if attr == SPEAKER:
            centroids = NearestCentroid(stack_features(clips_train, ["speaker"]), y_train)
    return Judges(per_attribute, centroids, held_acc, len(train), len(held))


# ---------------------------------------------------------------- probes


@torch.no_grad()
def embedding_probes(synth: Synthesizer, corpus: Corpus, per_cell: int, seed: int) -> dict[str, dict[str, Any]]:
    """{sub-encoder attribute: {corpus attribute: {accuracy, chance, folds}}} on held-out real utterances."""
    utts = balanced_sample(corpus.split("test"), corpus.attributes, per_cell, seed)
    mels = [mel_spectrogram(load_wav(u.audio, synth.params.sample_rate), synth.params) for u in utts]
    out: dict[str, dict[str, Any]] = {}
    for sub in synth.model.style.subs:
        emb = np.stack([sub(m[None], torch.tensor([m.shape[0]])).style[0].numpy() for m in mels])  # (N, d)
        out[sub.attribute] = {
            attr: probe_accuracy(emb, [u.attrs[attr] for u in utts], seed=seed) for attr in corpus.attributes
        }
    return out


# ---------------------------------------------------------------- the run


def _confusion_png(path: Path, truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str], title: str):
    from toonlab.extras import require

    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    m = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(truth, predicted, strict=True):
        m[classes.index(t), classes.index(p)] += 1
    size = 2.5 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(m, cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("judged from the output")
    ax.set_ylabel("reference's value")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if x == x]
    return float(np.mean(v)) if v else float("nan")


def evaluate(
    run: Path,
    corpus_dir: Path,
    out: Path | None = None,
    n_cases: int = 64,
    per_cell: int = 12,
    seed: int = 0,
    griffin_lim_iters: int = 32,
    asr: bool = True,
    vocoded_judges: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a run on a corpus; writes the report into `out` (default RUN/eval) and returns it."""
    t_start = time.time()
    out = Path(out) if out is not None else (Path(run) if Path(run).is_dir() else Path(run).parent) / "eval"
    (out / "audio").mkdir(parents=True, exist_ok=True)
    corpus = Corpus.load(corpus_dir)
    cases = crossed_cases(corpus, n_cases, seed)
    if not cases:
        raise ValueError(f"{corpus.root}: no crossed case could be formed from the held-out split")
    synth = Synthesizer.load(run, griffin_lim_iters=griffin_lim_iters, device=device)
    params = synth.params
    encoder = SpeakerEncoder()
    real = RealAudio(corpus, params, encoder, None, synth.vocoder if vocoded_judges else None)
    judges = build_judges(real, per_cell, seed)
    recogniser = Recogniser() if asr else None
    model_attrs = synth.attributes
    max_steps = synth.model.max_steps
    rows: list[dict[str, Any]] = []
    for k, case in enumerate(cases):
        t = case.target
        controls = {
            a: ReferenceStyle(mel_spectrogram(load_wav(case.references[a].audio, params.sample_rate), params))
            for a in model_attrs
            if a in case.references
        }
        result = synth.say(t.text, controls, seed=seed + k)
        wav = result.wav.numpy()
        wav_path = out / "audio" / f"case{k:03d}.wav"
        synth.write(result, wav_path)
        mel = mel_spectrogram(result.wav, params).numpy()
        real_wav = load_wav(t.audio, params.sample_rate)
        real_mel = mel_spectrogram(real_wav, params)
        floor_wav = synth.vocoder(real_mel)  # the real target through the same vocoder: what the judges can see
        floor_mel = mel_spectrogram(floor_wav, params).numpy()
        d, path = mcd(real_mel.numpy(), mel)
        floor, _ = mcd(real_mel.numpy(), floor_mel)
        f0_real = f0_track(real_wav.numpy(), params.sample_rate, params.hop_length)
        f0_syn = f0_track(wav, params.sample_rate, params.hop_length)
        judged, emb = judges.judge(wav, mel, t.text, encoder, params)
        judged_vocoded, _ = judges.judge(floor_wav.numpy(), floor_mel, t.text, encoder, params)
        row: dict[str, Any] = {
            "case": k,
            "target": t.id,
            "text": t.text,
            "audio": str(wav_path.relative_to(out)),
            "references": {a: u.id for a, u in case.references.items()},
            "reference_seconds": {a: u.duration for a, u in case.references.items()},
            "target_seconds": float(real_wav.shape[0] / params.sample_rate),
            "seconds": float(result.seconds),
            "hit_max_steps": bool(result.steps >= max_steps),
            "mcd": d,
            "mcd_vocoder_floor": floor,
            "f0_rmse": f0_rmse(f0_real, f0_syn, path),
            "truth": {a: t.attrs[a] for a in corpus.attributes},
            "judged": judged,
            "judged_vocoded_target": judged_vocoded,
        }
        if judges.centroids is not None:  # cosine to A (and its speaker) vs to the other reference (and its speaker)
            row["cos_speaker_ref"] = float(emb @ real.features(case.references[SPEAKER])["speaker"].numpy())
            row["cos_target_speaker_centroid"] = float(emb @ judges.centroids.centroid(t.attrs[SPEAKER]))
            other = next((u for a, u in case.references.items() if a != SPEAKER), None)
            if other is not None:
                row["cos_other_ref"] = float(emb @ real.features(other)["speaker"].numpy())
                row["cos_other_speaker_centroid"] = float(emb @ judges.centroids.centroid(other.attrs[SPEAKER]))
        if recogniser is not None:
            row["asr"] = recogniser.transcribe(wav, params.sample_rate)
            row["asr_real"] = real.transcript(t, recogniser)
            row["asr_vocoded_target"] = recogniser.transcribe(floor_wav.numpy(), params.sample_rate)
        rows.append(row)
    real.save()
    with (out / "cases.jsonl").open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    report = summarise(rows, judges, corpus, synth.attributes, str(run), out)
    report["judges"]["audio"] = "real recordings through the model's vocoder" if vocoded_judges else "real recordings"
    report["probes"] = embedding_probes(synth, corpus, max(1, per_cell // 2), seed)
    report["minutes"] = round((time.time() - t_start) / 60, 2)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(to_markdown(report) + "\n")
    return report


def summarise(
    rows: Sequence[dict[str, Any]],
    judges: Judges,
    corpus: Corpus,
    model_attributes: Sequence[str],
    run: str,
    out: Path,
) -> dict[str, Any]:
    """Aggregate case rows into the report (control, fidelity, intelligibility, length) and write confusions."""
    control: dict[str, Any] = {}
    for attr in corpus.attributes:
        if not rows or attr not in rows[0]["judged"]:
            continue
        truth = [r["truth"][attr] for r in rows]
        judged = [r["judged"][attr] for r in rows]
        classes = corpus.labels(attr)
        png = out / f"confusion_{attr}.png"
        _confusion_png(png, truth, judged, classes, f"{attr}: reference vs judged output ({len(rows)} cases)")
        control[attr] = {
            "accuracy": accuracy(truth, judged),
            "judge": judges.per_attribute[attr].name,
            "judge_cv_accuracy": judges.per_attribute[attr].cv,
            "judge_held_out_accuracy": judges.held_out_accuracy.get(attr),
            "vocoded_target_accuracy": accuracy(truth, [r["judged_vocoded_target"][attr] for r in rows]),
            "chance": 1.0 / len(classes),
            "confusion": png.name,
        }
    if rows and "cos_speaker_ref" in rows[0]:
        for key in ("cos_speaker_ref", "cos_other_ref", "cos_target_speaker_centroid", "cos_other_speaker_centroid"):
            if key in rows[0]:
                control[SPEAKER][key] = _mean([r[key] for r in rows])
    length = {
        attr: {
            "pearson": pearson([r["seconds"] for r in rows], [r["reference_seconds"][attr] for r in rows]),
            "partial": partial_correlation(
                [r["seconds"] for r in rows],
                [r["reference_seconds"][attr] for r in rows],
                [r["target_seconds"] for r in rows],
            ),
        }
        for attr in corpus.attributes
    }
    length["target"] = {"pearson": pearson([r["seconds"] for r in rows], [r["target_seconds"] for r in rows])}
    report: dict[str, Any] = {
        "run": run,
        "model_attributes": list(model_attributes),
        "corpus": str(corpus.root),
        "cases": len(rows),
        "judges": {"train_utterances": judges.n_train, "held_out_utterances": judges.n_held_out},
        "control": control,
        "fidelity": {
            "mcd_db": _mean([r["mcd"] for r in rows]),
            "mcd_vocoder_floor_db": _mean([r["mcd_vocoder_floor"] for r in rows]),
            "f0_rmse_hz": _mean([r["f0_rmse"] for r in rows]),
            "hit_max_steps": int(sum(r["hit_max_steps"] for r in rows)),
        },
        "length": length,
    }
    if rows and "asr" in rows[0]:
        report["intelligibility"] = {
            "wer": word_error_rate([r["text"] for r in rows], [r["asr"] for r in rows]),
            "wer_real": word_error_rate([r["text"] for r in rows], [r["asr_real"] for r in rows]),
            "wer_vocoded_real": word_error_rate([r["text"] for r in rows], [r["asr_vocoded_target"] for r in rows]),
        }
    return report


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""
    lines = [
        f"# Evaluation: {report.get('run') or 'run'}",
        "",
        f"{report['cases']} crossed cases on held-out sentences; model sub-encoders: "
        f"{', '.join(report['model_attributes'])}; corpus {report['corpus']}.",
        "",
        f"Judges built from {report['judges'].get('audio', 'real recordings')}.",
        "",
        "| control | accuracy on outputs | chance | judge on held-out real audio | judge on vocoded real targets | "
        "judge (training-split CV accuracy) |",
        "|---|---|---|---|---|---|",
    ]
    for attr, c in report["control"].items():
        cv = c.get("judge_cv_accuracy", {}).get(c.get("judge"))
        lines.append(
            f"| {attr} | {_pct(c['accuracy'])} | {_pct(c['chance'])} | {_pct(c['judge_held_out_accuracy'])} | "
            f"{_pct(c.get('vocoded_target_accuracy'))} | {c.get('judge', '–')} ({_pct(cv)}) |"
        )
    spk = report["control"].get(SPEAKER, {})
    if "cos_other_ref" in spk:
        lines += [
            "",
            "| speaker cosine (GE2E) | to the speaker reference / its speaker | to the other reference / its speaker |",
            "|---|---|---|",
            f"| utterance | {_num(spk['cos_speaker_ref'], 3)} | {_num(spk['cos_other_ref'], 3)} |",
            f"| speaker centroid | {_num(spk['cos_target_speaker_centroid'], 3)} | "
            f"{_num(spk['cos_other_speaker_centroid'], 3)} |",
        ]
    fid = report["fidelity"]
    lines += [
        "",
        "| fidelity | value |",
        "|---|---|",
        f"| MCD (DTW) | {_num(fid['mcd_db'])} dB (vocoder floor {_num(fid['mcd_vocoder_floor_db'])} dB) |",
        f"| F0 RMSE (voiced in both) | {_num(fid['f0_rmse_hz'], 1)} Hz |",
        f"| outputs that never stopped | {fid['hit_max_steps']} of {report['cases']} |",
    ]
    if "intelligibility" in report:
        it = report["intelligibility"]
        lines += ["", "| WER (pocketsphinx) | outputs | real recordings | real, vocoded |", "|---|---|---|---|"]
        lines.append(f"| all cases | {_pct(it['wer'])} | {_pct(it['wer_real'])} | {_pct(it.get('wer_vocoded_real'))} |")
    lines += ["", "| output duration vs | Pearson r | partial r (target duration removed) |", "|---|---|---|"]
    for attr, v in report["length"].items():
        name = "real target recording" if attr == "target" else f"{attr} reference duration"
        lines.append(f"| {name} | {_num(v['pearson'])} | {_num(v.get('partial'))} |")
    probes = report.get("probes", {})
    if probes:
        attrs = list(next(iter(probes.values())))
        lines += ["", "| probe: embedding of → predicts | " + " | ".join(attrs) + " |", "|---" * (len(attrs) + 1) + "|"]
        for sub, res in probes.items():
            cells = [f"{_pct(res[a]['accuracy'])} (chance {_pct(res[a]['chance'])})" for a in attrs]
            lines.append(f"| {sub} sub-encoder | " + " | ".join(cells) + " |")
    if "minutes" in report:
        lines += ["", f"Evaluation took {report['minutes']} min."]
    return "\n".join(lines)


def run_cli(
    run: Path,
    corpus: Path,
    out: Path | None,
    cases: int,
    per_cell: int,
    seed: int,
    asr: bool,
    vocoded: bool,
    device: str = "cpu",
) -> None:
    """`toonlab tts evaluate`: run and print the markdown report."""
    import typer

    try:
        report = evaluate(run, corpus, out, cases, per_cell, seed, asr=asr, vocoded_judges=vocoded, device=device)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(to_markdown(report))
