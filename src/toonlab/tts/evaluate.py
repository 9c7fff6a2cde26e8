"""`toonlab tts evaluate RUN --corpus DIR`: control, fidelity, intelligibility, length leakage, model-free style
measures and embedding probes of a trained run, measured on held-out sentences.

Crossed cases (seeded sample of `n_cases`, default 128): a held-out target utterance T = (speaker s, style e,
sentence t); for each attribute a, a reference that shares a with T and differs from it in every other attribute,
on another sentence (from the held-out split when it has one, else from the whole corpus): speaker reference
A = (s, not e), style reference B = (not s, e). The model speaks t with each sub-encoder fed the reference of its
attribute (a single-GST model has one sub-encoder, for "style", so it hears B only). T is the real recording the
output should match.

Every judge (`toonlab.tts.judging`: per-attribute classifiers trained on vocoded and degraded real clips, the
model-free style statistics, pocketsphinx) scores, beside each output, the same case's real target T in three
domains: as recorded, through the model's vocoder, and degraded (smoothed and compressed, then vocoded). These
control rows say what each judge can see at best and whether it decides by smoothness.

Also: speaker cosines (GE2E) to A and B and their speakers' centroids; MCD (DTW) and F0 RMSE against T beside the
vocoder floor; WER of outputs and the three controls; output-duration correlation with each reference's duration,
raw and with T's duration partialled out; the style sweep (`sweeps` sentence-speaker pairs, one output per style
value, ranked against the styles' real statistics, beside the same sweep on real recordings); cross-validated
probes from each sub-encoder's embedding to each attribute. Accuracies carry 95% Wilson intervals, WER and means
bootstrap intervals over cases, correlations Fisher intervals.

The run is resumable: each finished case and sweep is appended to `OUT/partial.jsonl` (with a key naming the
checkpoint and settings), and a rerun with the same key continues after the last one, so a long evaluation can
run in bounded chunks. Out folder: `report.md`, `report.json`, `cases.jsonl`, `sweeps.jsonl`,
`confusion_<attr>.png`, `audio/`. Real-audio features are cached in `CORPUS/features/eval-<domain>-<key>.pt`
(or `--cache DIR`).
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

from toonlab.tts.audio import load_wav, mel_spectrogram
from toonlab.tts.classifiers import Recogniser, SpeakerEncoder, probe_accuracy
from toonlab.tts.judging import SPEAKER, Judges, RealAudio, balanced_sample, build_judges, clip_features, real_domains
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.metrics import f0_rmse, f0_track, mcd
from toonlab.tts.report import summarise, to_markdown
from toonlab.tts.style import ReferenceStyle
from toonlab.tts.style_measures import sweep_rank
from toonlab.tts.synthesize import Synthesizer


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


# ---------------------------------------------------------------- probes


@torch.no_grad()
def embedding_probes(synth: Synthesizer, corpus: Corpus, per_cell: int, seed: int) -> dict[str, dict[str, Any]]:
    """{sub-encoder attribute: {corpus attribute: {accuracy, chance, folds}}} on held-out real utterances."""
    utts = balanced_sample(corpus.split("test"), corpus.attributes, per_cell, seed)
    dev = synth.device
    mels = [mel_spectrogram(load_wav(u.audio, synth.params.sample_rate), synth.params).to(dev) for u in utts]
    out: dict[str, dict[str, Any]] = {}
    for sub in synth.model.style.subs:
        lengths = [torch.tensor([m.shape[0]], device=dev) for m in mels]
        emb = np.stack([sub(m[None], n).style[0].float().cpu().numpy() for m, n in zip(mels, lengths, strict=True)])
        out[sub.attribute] = {
            attr: probe_accuracy(emb, [u.attrs[attr] for u in utts], seed=seed) for attr in corpus.attributes
        }
    return out


# ---------------------------------------------------------------- style sweeps


@dataclass(frozen=True)
class Sweep:
    """One sentence in one voice, once per value of `attr`: the speaker reference is fixed, the `attr` reference
    changes. `real[value]` is the real recording of that sentence by that speaker with that value, when it exists."""

    attr: str
    text: str
    speaker: str | None
    speaker_reference: Utterance | None
    references: dict[str, Utterance]
    real: dict[str, Utterance]


def style_sweeps(corpus: Corpus, n_sweeps: int, seed: int = 0) -> list[Sweep]:
    """Up to `n_sweeps` sweeps per non-speaker attribute over held-out sentences (seeded)."""
    rng = random.Random(seed)
    held = sorted(corpus.split("test"), key=lambda u: u.id)
    has_speaker = SPEAKER in corpus.attributes
    sweeps = []
    for attr in (a for a in corpus.attributes if a != SPEAKER):
        values = corpus.labels(attr)
        groups: dict[tuple[str, str | None], dict[str, Utterance]] = {}
        for u in held:
            groups.setdefault((u.sentence_id, u.attrs.get(SPEAKER)), {}).setdefault(u.attrs[attr], u)
        keys = sorted(groups)
        for sentence, speaker in rng.sample(keys, min(n_sweeps, len(keys))):
            real = groups[(sentence, speaker)]
            text = next(iter(real.values())).text
            refs = {}
            for v in values:
                pool = [u for u in held if u.attrs[attr] == v and u.sentence_id != sentence]
                pool = [u for u in pool if not has_speaker or u.attrs[SPEAKER] != speaker] or pool
                if pool:
                    refs[v] = rng.choice(pool)
            spk_pool = [u for u in held if has_speaker and u.attrs[SPEAKER] == speaker and u.sentence_id != sentence]
            spk_ref = rng.choice(spk_pool) if spk_pool else None
            if len(refs) == len(values) and (spk_ref is not None or not has_speaker):
                sweeps.append(Sweep(attr, text, speaker, spk_ref, refs, real))
    return sweeps


# ---------------------------------------------------------------- one case, one sweep


@dataclass
class Context:
    """What every case needs: the model, the judges, the real-audio domains, the recogniser, the out folder."""

    synth: Synthesizer
    judges: Judges
    domains: dict[str, RealAudio]
    encoder: SpeakerEncoder
    recogniser: Recogniser | None
    out: Path

    def control(self, u: Utterance) -> ReferenceStyle:
        return ReferenceStyle(mel_spectrogram(load_wav(u.audio, self.synth.params.sample_rate), self.synth.params))

    def speak(self, text: str, controls: dict[str, Utterance], seed: int, name: str) -> tuple[Any, dict[str, Any]]:
        """Synthesise, write OUT/audio/NAME.wav, and return (the Synthesis, its clip features); the Synthesis gets
        `compute_seconds`, the wall time of text -> waveform (references encoded, vocoder included)."""
        attrs = self.synth.attributes
        t0 = time.perf_counter()
        result = self.synth.say(text, {a: self.control(u) for a, u in controls.items() if a in attrs}, seed=seed)
        result.compute_seconds = time.perf_counter() - t0
        self.synth.write(result, self.out / "audio" / f"{name}.wav")
        mel = mel_spectrogram(result.wav, self.synth.params).numpy()
        return result, clip_features(result.wav.numpy(), mel, text, self.encoder, self.synth.params)

    def decisions(self, clip: dict[str, Any], speaker: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """(classifier judgements, model-free style decisions) of one clip."""
        return self.judges.judge(clip), self.judges.statistics.decide(clip["prosody"].numpy(), speaker)


def case_row(ctx: Context, k: int, case: Case, seed: int) -> dict[str, Any]:
    """Synthesise one crossed case and score it and its real target in every domain."""
    t, params = case.target, ctx.synth.params
    speaker = t.attrs.get(SPEAKER)
    result, clip = ctx.speak(t.text, case.references, seed + k, f"case{k:03d}")
    row: dict[str, Any] = {
        "case": k,
        "target": t.id,
        "text": t.text,
        "audio": f"audio/case{k:03d}.wav",
        "references": {a: u.id for a, u in case.references.items()},
        "reference_seconds": {a: u.duration for a, u in case.references.items()},
        "target_seconds": float(ctx.domains["real"].features(t)["seconds"]),
        "seconds": float(result.seconds),
        "hit_max_steps": bool(result.hit_step_limit),
        "rtf": result.compute_seconds / max(result.seconds, 1e-3),
        "truth": dict(t.attrs),
        "judged": {},
        "model_free": {},
        "prosody": {"output": ctx.judges.statistics.normalised(clip["prosody"].numpy(), speaker).tolist()},
    }
    row["judged"]["output"], row["model_free"]["output"] = ctx.decisions(clip, speaker)
    for name, domain in ctx.domains.items():
        row["judged"][name], row["model_free"][name] = ctx.decisions(domain.features(t), speaker)
    real_wav, real_mel = ctx.domains["real"].audio(t)
    out_mel = mel_spectrogram(result.wav, params).numpy()
    row["mcd"], path = mcd(real_mel.numpy(), out_mel)
    row["mcd_vocoder_floor"], _ = mcd(real_mel.numpy(), ctx.domains["vocoded"].audio(t)[1].numpy())
    f0_real = f0_track(real_wav.numpy(), params.sample_rate, params.hop_length)
    row["f0_rmse"] = f0_rmse(f0_real, f0_track(result.wav.numpy(), params.sample_rate, params.hop_length), path)
    emb, centroids = clip["speaker"].numpy(), ctx.judges.centroids
    if centroids is not None:  # cosine to A (and its speaker) vs to the other reference (and its speaker)
        real = ctx.domains["real"]
        row["cos_speaker_ref"] = float(emb @ real.features(case.references[SPEAKER])["speaker"].numpy())
        row["cos_target_speaker_centroid"] = float(emb @ centroids.centroid(speaker))
        other = next((u for a, u in case.references.items() if a != SPEAKER), None)
        if other is not None:
            row["cos_other_ref"] = float(emb @ real.features(other)["speaker"].numpy())
            row["cos_other_speaker_centroid"] = float(emb @ centroids.centroid(other.attrs[SPEAKER]))
    if ctx.recogniser is not None:
        row["asr"] = {"output": ctx.recogniser.transcribe(result.wav.numpy(), params.sample_rate)}
        row["asr"].update({n: d.transcript(t, ctx.recogniser) for n, d in ctx.domains.items()})
    return row


def sweep_row(ctx: Context, k: int, sweep: Sweep, seed: int) -> dict[str, Any]:
    """Synthesise one sweep (one output per value) and measure it beside the real recordings of the sweep."""
    stats = ctx.judges.statistics
    row: dict[str, Any] = {"sweep": k, "attr": sweep.attr, "text": sweep.text, "speaker": sweep.speaker}
    row["prosody"] = {"output": {}}
    for v, ref in sweep.references.items():
        controls = {sweep.attr: ref, **({SPEAKER: sweep.speaker_reference} if sweep.speaker_reference else {})}
        _, clip = ctx.speak(sweep.text, controls, seed, f"sweep{k:03d}-{v}")
        row["prosody"]["output"][v] = clip["prosody"].numpy().tolist()
    for name, domain in ctx.domains.items():
        row["prosody"][name] = {v: domain.features(u)["prosody"].numpy().tolist() for v, u in sweep.real.items()}
    row["spearman"] = {
        source: sweep_rank({v: np.asarray(x) for v, x in values.items()}, sweep.speaker, stats, sweep.attr)
        for source, values in row["prosody"].items()
        if len(values) >= 3
    }
    return row


# ---------------------------------------------------------------- the run


class Progress:
    """OUT/partial.jsonl: finished case and sweep rows under a key; a different key starts it afresh."""

    def __init__(self, out: Path, key: str) -> None:
        self.path = out / "partial.jsonl"
        self.rows: dict[str, dict[str, Any]] = {}
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        if lines and _json(lines[0]).get("key") == key:
            for line in lines[1:]:
                row = _json(line)  # a torn last line (killed mid-write) is skipped and redone
                if "id" in row:
                    self.rows[row["id"]] = row["row"]
        self._file = self.path.open("w")
        self._file.write(json.dumps({"key": key}) + "\n")
        for rid, row in self.rows.items():
            self._file.write(json.dumps({"id": rid, "row": row}) + "\n")
        self._file.flush()

    def get(self, rid: str, make: Any) -> dict[str, Any]:
        if rid not in self.rows:
            self.rows[rid] = make()
            self._file.write(json.dumps({"id": rid, "row": self.rows[rid]}) + "\n")
            self._file.flush()
        return self.rows[rid]

    def close(self) -> None:
        self._file.close()


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _run_key(run: Path, corpus: Path, settings: dict[str, Any]) -> str:
    ckpt = run / "checkpoint.pt" if run.is_dir() else run
    stat = ckpt.stat()
    ident = [str(ckpt.resolve()), stat.st_size, stat.st_mtime_ns, str(corpus.resolve()), settings]
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def evaluate(
    run: Path,
    corpus_dir: Path,
    out: Path | None = None,
    n_cases: int = 128,
    per_cell: int = 12,
    seed: int = 0,
    griffin_lim_iters: int = 32,
    asr: bool = True,
    vocoded_judges: bool = True,
    n_sweeps: int = 16,
    vocoder: str = "griffin-lim",
    cache: Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate a run on a corpus (resuming OUT/partial.jsonl); writes the report into `out` (default RUN/eval)."""
    t_start = time.time()
    run = Path(run)
    out = Path(out) if out is not None else (run if run.is_dir() else run.parent) / "eval"
    (out / "audio").mkdir(parents=True, exist_ok=True)
    corpus = Corpus.load(corpus_dir)
    cases = crossed_cases(corpus, n_cases, seed)
    if not cases:
        raise ValueError(f"{corpus.root}: no crossed case could be formed from the held-out split")
    sweeps = style_sweeps(corpus, n_sweeps, seed)
    synth = Synthesizer.load(run, vocoder, griffin_lim_iters, device=device)
    encoder = SpeakerEncoder()
    domains = real_domains(corpus, synth.params, encoder, synth.vocoder, cache)
    judges = build_judges(domains, per_cell, seed, vocoded_judges)
    ctx = Context(synth, judges, domains, encoder, Recogniser() if asr else None, out)
    settings = dict(cases=n_cases, per_cell=per_cell, seed=seed, gl=griffin_lim_iters, asr=asr,
                    vocoded=vocoded_judges, sweeps=n_sweeps, vocoder=synth.vocoder.name)  # fmt: skip
    progress = Progress(out, _run_key(run, corpus.root, settings))
    try:
        rows = [progress.get(f"case{k}", lambda k=k, c=c: case_row(ctx, k, c, seed)) for k, c in enumerate(cases)]
        sweep_rows = [
            progress.get(f"sweep{k}", lambda k=k, s=s: sweep_row(ctx, k, s, seed)) for k, s in enumerate(sweeps)
        ]
    finally:
        progress.close()
        for d in domains.values():
            d.save()
    for name, data in (("cases.jsonl", rows), ("sweeps.jsonl", sweep_rows)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in data))
    report = summarise(rows, sweep_rows, judges, corpus, synth.attributes, str(run), out)
    report["vocoder"] = synth.vocoder.name
    report["probes"] = embedding_probes(synth, corpus, max(1, per_cell // 2), seed)
    report["minutes"] = round((time.time() - t_start) / 60, 2)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(to_markdown(report) + "\n")
    return report


def run_cli(
    run: Path,
    corpus: Path,
    out: Path | None,
    cases: int,
    per_cell: int,
    seed: int,
    asr: bool,
    vocoded: bool,
    sweeps: int = 16,
    vocoder: str = "griffin-lim",
    cache: Path | None = None,
    device: str = "cpu",
) -> None:
    """`toonlab tts evaluate`: run and print the markdown report."""
    import typer

    try:
        report = evaluate(
            run,
            corpus,
            out,
            n_cases=cases,
            per_cell=per_cell,
            seed=seed,
            asr=asr,
            vocoded_judges=vocoded,
            n_sweeps=sweeps,
            vocoder=vocoder,
            cache=cache,
            device=device,
        )
    except (ValueError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(to_markdown(report))
