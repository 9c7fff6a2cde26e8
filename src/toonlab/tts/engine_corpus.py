"""Voice x style x sentence corpus built with Debian speech engines (`toonlab tts corpus OUT`).

Held-out (test) sentences are rendered in every (speaker, style) cell, so every crossed synthesis has a real
target. Training sentences are rendered either in every cell too (the default) or, with `train_cells=K`, in K
cells each, assigned by rotating through a fixed shuffled order of all cells: every cell then gets the same number
of training clips (+-1), every voice and style the same share, and many more sentences fit the same audio budget.
Sentences come from the `fortunes` package (sayings, filtered to 3-15 plain
words) or from a text file; a deterministic set of held-out sentences is `test` for every speaker and style.
Each render is resampled to 16 kHz mono PCM16, trimmed, and guarded against clipping. The build is resumable
(rows already in the manifest whose wav exists are skipped) and a failed render is counted, not fatal.
Per-style and per-voice acoustic statistics (F0 mean and range, speaking rate, RMS energy) go into corpus.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toonlab.extras import require
from toonlab.io import cpu_share
from toonlab.tts.engines import (
    DEFAULT_VOICES,
    INSTALL_HINT,
    STYLES,
    VOICES,
    RenderError,
    Style,
    get_styles,
    get_voices,
)
from toonlab.tts.manifest import INFO, MANIFEST, WAVS, write_manifest

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
TRIM_TOP_DB = 50.0  # relative to the peak; 40 cut soft word endings of loud pico styles
PEAK_LIMIT = 0.97
ATTRIBUTES = ["speaker", "style"]
FORTUNES_DIR = Path("/usr/share/games/fortunes")
# Sayings files of the Debian `fortunes` / `fortunes-min` packages that hold plain, mostly inoffensive prose.
FORTUNE_FILES = (
    "fortunes", "wisdom", "platitudes", "literature", "food", "education", "kids", "love", "pets",
    "science", "sports", "work", "art", "people", "miscellaneous", "humorists",
)  # fmt: skip
DEFAULT_SENTENCES = 120
CHECKPOINT_EVERY = 200

_PLAIN = re.compile(r"^[A-Z][A-Za-z ,;'\-]*[a-z][.!?]$")
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


# ----------------------------------------------------------------------------------------------- sentences
def normalise(sentence: str) -> str:
    """Collapse whitespace, straighten quotes, drop double quotes and stray spaces before punctuation."""
    s = sentence.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    s = re.sub(r"[\"\u201c\u201d]", "", s)
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(r"\s+([,;.!?])", r"\1", s)


def is_plain(sentence: str, min_words: int = 3, max_words: int = 15) -> bool:
    """3-15 words of ASCII letters with simple punctuation, a capital first, no acronyms or digits."""
    n = len(sentence.split())
    return min_words <= n <= max_words and bool(_PLAIN.match(sentence)) and not re.search(r"[A-Z]{2}", sentence)


def split_sentences(text: str) -> list[str]:
    return [normalise(s) for s in _SENT_SPLIT.split(normalise(text))]


def fortune_sentences(root: Path = FORTUNES_DIR, files: Iterable[str] = FORTUNE_FILES) -> list[str]:
    """Plain sentences from the sayings of the `fortunes` packages (attribution lines and verse dropped)."""
    found = [root / f for f in files if (root / f).is_file()]
    if not found:
        raise FileNotFoundError(f"no fortunes files under {root}: {INSTALL_HINT} (it installs `fortunes`)")
    out: list[str] = []
    for path in found:
        for cookie in path.read_text(encoding="latin-1").split("\n%\n"):
            lines = [ln for ln in cookie.splitlines() if not ln.strip().startswith("--")]
            if len(lines) > 3 and any(ln.startswith((" ", "\t")) for ln in lines[1:]):
                continue  # indented multi-line layout: verse, dialogue, ascii art
            out.extend(s for s in split_sentences(" ".join(lines)) if is_plain(s))
    return out


def _digest(text: str, salt: str = "") -> str:
    return hashlib.sha1((salt + text.lower()).encode()).hexdigest()


@dataclass(frozen=True)
class Sentence:
    id: str  # "s" + 8 hex digits of the text's hash: stable whatever the selection size
    text: str
    split: str


def select_sentences(pool: Iterable[str], n: int, test_frac: float) -> list[Sentence]:
    """Pick `n` distinct sentences deterministically (hash order) and hold out round(test_frac * n) as test."""
    unique: dict[str, str] = {}
    for s in pool:
        unique.setdefault(s.lower(), s)
    chosen = sorted(unique.values(), key=_digest)[:n]
    if len(chosen) < n:
        log.warning("only %d distinct sentences available (asked for %d)", len(chosen), n)
    n_test = min(len(chosen) - 1, max(1, round(test_frac * len(chosen)))) if test_frac > 0 else 0
    test = set(sorted(chosen, key=lambda s: _digest(s, "test"))[:n_test])
    return [Sentence("s" + _digest(s)[:8], s, "test" if s in test else "train") for s in chosen]


def design(
    chosen: list[Sentence], voices: list[str], styles: list[str], train_cells: int = 0
) -> list[tuple[Sentence, str, str]]:
    """(sentence, voice, style) to render: every cell for test sentences (and for all sentences when
    `train_cells` is 0), else `train_cells` cells per training sentence, rotating through a fixed shuffled order
    of the cells so that each cell, voice and style gets an equal share."""
    cells = [(v, st) for v in voices for st in styles]
    if train_cells < 0 or train_cells > len(cells):
        raise ValueError(f"train_cells must be 0..{len(cells)} ({len(voices)} voices x {len(styles)} styles)")
    order = sorted(cells, key=lambda c: _digest(f"{c[0]}/{c[1]}", "cells"))
    out: list[tuple[Sentence, str, str]] = []
    n_train = 0
    for s in chosen:
        if s.split == "test" or not train_cells:
            out.extend((s, v, st) for v, st in cells)
            continue
        out.extend((s, *order[(n_train * train_cells + j) % len(order)]) for j in range(train_cells))
        n_train += 1
    return out


# ----------------------------------------------------------------------------------------------- rendering
@dataclass(frozen=True)
class Job:
    id: str
    voice: str
    style: str
    sentence: Sentence
    wav: Path


def postprocess(y: np.ndarray, sr: int) -> np.ndarray:
    """Mono, 16 kHz, leading/trailing silence trimmed at TRIM_TOP_DB, scaled down only if it would clip."""
    librosa = require("librosa")
    if y.ndim == 2:
        y = y.mean(axis=1)
    y = y.astype(np.float32)
    if sr != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    y, _ = librosa.effects.trim(y, top_db=TRIM_TOP_DB, frame_length=512, hop_length=128)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > PEAK_LIMIT:
        y = y * (PEAK_LIMIT / peak)
    return y


def render_job(job: Job) -> dict[str, Any]:
    """Render one utterance; return its manifest row, or {"id", "error"} when the engine failed."""
    sf = require("soundfile")
    raw = job.wav.with_name(f".{job.id}.raw.wav")
    tmp = job.wav.with_name(f".{job.id}.tmp.wav")
    try:
        if not job.sentence.text.strip():
            raise RenderError("empty text")
        VOICES[job.voice].render(job.sentence.text, STYLES[job.style], raw)
        y, sr = sf.read(str(raw), dtype="float32")
        y = postprocess(y, sr)
        if y.size < SAMPLE_RATE // 10:
            raise RenderError(f"only {y.size} samples left after trimming")
        sf.write(str(tmp), y, SAMPLE_RATE, subtype="PCM_16")
        os.replace(tmp, job.wav)
    except Exception as exc:  # an engine failure is a counted error, never a crash of the build
        return {"id": job.id, "speaker": job.voice, "style": job.style, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        raw.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)
    return row_for(job, y.size / SAMPLE_RATE)


def row_for(job: Job, duration: float) -> dict[str, Any]:
    return {
        "id": job.id,
        "text": job.sentence.text,
        "audio": f"{WAVS}/{job.wav.name}",
        "duration": round(duration, 4),
        "sample_rate": SAMPLE_RATE,
        "sentence_id": job.sentence.id,
        "split": job.sentence.split,
        "speaker": job.voice,
        "style": job.style,
        "engine": VOICES[job.voice].engine,
    }


# ----------------------------------------------------------------------------------------------- statistics
def acoustic_stats(wav: Path, text: str) -> dict[str, float]:
    """F0 mean (Hz) and range (semitones, 5th-95th percentile) by pyin, rate (letters/s), RMS energy (dB)."""
    librosa = require("librosa")
    sf = require("soundfile")
    y, sr = sf.read(str(wav), dtype="float32")
    f0, voiced, _ = librosa.pyin(y, fmin=50, fmax=600, sr=sr, frame_length=1024, hop_length=320)
    f0 = f0[voiced & np.isfinite(f0)]
    lo, hi = np.percentile(f0, [5, 95]) if f0.size else (np.nan, np.nan)
    return {
        "f0_mean_hz": float(np.mean(f0)) if f0.size else float("nan"),
        "f0_range_st": float(12 * np.log2(hi / lo)) if f0.size else float("nan"),
        "rate_cps": sum(c.isalpha() for c in text) / (len(y) / sr),
        "rms_db": float(20 * np.log10(np.sqrt(np.mean(y**2)) + 1e-9)),
    }


STAT_KEYS = ("f0_mean_hz", "f0_range_st", "rate_cps", "rms_db")


def _mean_stats(items: list[dict[str, float]]) -> dict[str, float]:
    out = {k: round(float(np.nanmean([s[k] for s in items])), 2) for k in STAT_KEYS}
    out["n"] = len(items)
    return out


def style_checks(by_voice: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    """Expected direction of each style against the same voice's neutral; returns the violations."""
    expect = {
        "happy": (("f0_mean_hz", 1), ("rate_cps", 1)),
        "sad": (("f0_mean_hz", -1), ("rate_cps", -1), ("rms_db", -1)),
        "angry": (("rms_db", 1), ("rate_cps", 1)),
    }
    problems = []
    for voice, styles in by_voice.items():
        if "neutral" not in styles:
            continue
        for style, rules in expect.items():
            for key, sign in rules if style in styles else ():
                if not sign * (styles[style][key] - styles["neutral"][key]) > 0:
                    problems.append(f"{voice}/{style}: {key} not {'above' if sign > 0 else 'below'} neutral")
    return problems


def measure(rows: list[dict[str, Any]], root: Path, per_cell: int, pool: ProcessPoolExecutor) -> dict[str, Any]:
    """Acoustic statistics on up to `per_cell` utterances per (voice, style), aggregated per style and voice."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: _digest(r["id"], "stats")):
        cell = cells.setdefault((r["speaker"], r["style"]), [])
        if len(cell) < per_cell:
            cell.append(r)
    sample = [r for cell in cells.values() for r in cell]
    stats = list(pool.map(acoustic_stats, [root / r["audio"] for r in sample], [r["text"] for r in sample]))
    by_cell: dict[tuple[str, str], list[dict[str, float]]] = {}
    for r, s in zip(sample, stats, strict=True):
        by_cell.setdefault((r["speaker"], r["style"]), []).append(s)
    by_voice: dict[str, dict[str, dict[str, float]]] = {}
    for (voice, style), items in sorted(by_cell.items()):
        by_voice.setdefault(voice, {})[style] = _mean_stats(items)
    styles = sorted({st for _, st in by_cell}, key=lambda st: list(STYLES).index(st) if st in STYLES else 99)
    by_style = {st: _mean_stats([s for (_, k), items in by_cell.items() if k == st for s in items]) for st in styles}
    return {"style_stats": by_style, "voice_style_stats": by_voice, "style_check_failures": style_checks(by_voice)}


# ----------------------------------------------------------------------------------------------- build
@dataclass
class BuildResult:
    root: Path
    rows: list[dict[str, Any]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    rendered: int = 0
    skipped: int = 0
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def _existing_rows(root: Path) -> dict[str, dict[str, Any]]:
    manifest = root / MANIFEST
    if not manifest.exists():
        return {}
    rows = {}
    for line in manifest.read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue  # a damaged row is simply rendered again
        rows[r["id"]] = r
    return rows


def build_corpus(
    out: str | Path,
    voices: list[str] | None = None,
    styles: list[str] | None = None,
    n_sentences: int = DEFAULT_SENTENCES,
    test_frac: float = 0.1,
    jobs: int | None = None,
    sentences: list[str] | None = None,
    stats_per_cell: int = 6,
    progress: Callable[[int, int], None] | None = None,
    train_cells: int = 0,
) -> BuildResult:
    """Render the voice x style x sentence design into `out` (see the module docstring).

    `sentences` overrides the fortunes source (each string is normalised, not filtered). `progress(done, total)`
    is called after each utterance. `train_cells` > 0 renders each training sentence in that many cells.
    """
    t0 = time.perf_counter()
    root = Path(out)
    voice_objs = get_voices(voices or DEFAULT_VOICES)
    style_objs: list[Style] = get_styles(styles or list(STYLES))
    pool = [normalise(s) for s in sentences] if sentences is not None else fortune_sentences()
    chosen = select_sentences(pool, n_sentences, test_frac)
    (root / WAVS).mkdir(parents=True, exist_ok=True)

    old = _existing_rows(root)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[Job] = []
    for s, v, st in design(chosen, [v.name for v in voice_objs], [st.name for st in style_objs], train_cells):
        uid = f"{v}-{st}-{s.id}"
        job = Job(uid, v, st, s, root / WAVS / f"{uid}.wav")
        if uid in old and job.wav.exists():
            rows[uid] = row_for(job, float(old[uid]["duration"]))  # split/text refreshed, audio kept
        else:
            todo.append(job)
    total, skipped = len(rows) + len(todo), len(rows)
    errors: list[dict[str, Any]] = []
    extra = {
        "voices": {v.name: v.engine for v in voice_objs},
        "sentence_source": _source_name(sentences),
        "design": {"train_cells_per_sentence": train_cells or len(voice_objs) * len(style_objs), "test": "crossed"},
    }
    done = skipped
    if progress:
        progress(done, total)
    with ProcessPoolExecutor(max_workers=jobs or cpu_share()) as ex:
        futures = [ex.submit(render_job, j) for j in todo]
        for fut in as_completed(futures):
            r = fut.result()
            if "error" in r:
                errors.append(r)
                log.warning("render failed %s: %s", r["id"], r["error"])
            else:
                rows[r["id"]] = r
            done += 1
            if progress:
                progress(done, total)
            if done % CHECKPOINT_EVERY == 0 and rows:
                write_manifest(root, rows.values(), ATTRIBUTES, extra)  # resume point
        if not rows:
            raise RenderError(f"no utterance rendered ({len(errors)} errors; first: {errors[:1]})")
        ordered = sorted(rows.values(), key=lambda r: r["id"])
        stats = measure(ordered, root, stats_per_cell, ex)
    info = {
        **extra,
        "styles": {st.name: vars(st) for st in style_objs},
        "processing": {"trim_top_db": TRIM_TOP_DB, "peak_limit": PEAK_LIMIT, "subtype": "PCM_16"},
        "errors": len(errors),
        **stats,
    }
    info["build_seconds"] = round(time.perf_counter() - t0, 1)
    write_manifest(root, ordered, ATTRIBUTES, info)
    (root / "errors.jsonl").unlink(missing_ok=True)
    if errors:
        (root / "errors.jsonl").write_text("".join(json.dumps(e) + "\n" for e in errors))
    info = json.loads((root / INFO).read_text())
    return BuildResult(root, ordered, errors, len(todo) - len(errors), skipped, info["build_seconds"], info)


def _source_name(sentences: list[str] | None) -> str:
    if sentences is not None:
        return "user text"
    return f"Debian package `fortunes` ({FORTUNES_DIR})"
