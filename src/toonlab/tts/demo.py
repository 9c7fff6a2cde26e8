"""`toonlab tts demo RUN --corpus DIR --out PAGE`: a static listening page for a trained run.

Sections: a control grid (rows: speaker references, columns: style references, each cell the model speaking one
held-out sentence with that pair), an interpolation between two style references, single-token weights and seeded
random tokens per sub-encoder, and the evaluation report (`RUN/eval/report.md` and its confusion matrices) when
one exists. Everything is written under PAGE (index.html, audio/*.wav, img/*.png); the page needs no network
and no script. The page is rendered by Jinja2 (`templates/listen.html.j2`, autoescaped) from the clips made here.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toonlab.tts.audio import load_wav, mel_spectrogram, save_wav
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.style import InterpolatedStyle, RandomTokens, ReferenceStyle, StyleControl, TokenWeights
from toonlab.tts.synthesize import Synthesizer


@dataclass
class Clip:
    label: str
    path: str  # relative to the page folder


class Page:
    """Writes clips into PAGE/audio and collects the HTML body."""

    def __init__(self, synth: Synthesizer, out: Path, text: str) -> None:
        self.synth, self.out, self.text = synth, out, text
        (out / "audio").mkdir(parents=True, exist_ok=True)
        self._refs: dict[str, ReferenceStyle] = {}
        self.n = 0

    def reference(self, u: Utterance) -> Clip:
        """Copy a real reference into the page (as 16-bit wav at the model's rate)."""
        dest = self.out / "audio" / f"ref-{u.id}.wav"
        if not dest.exists():
            save_wav(dest, load_wav(u.audio, self.synth.params.sample_rate), self.synth.params.sample_rate)
        return Clip(f"{u.id}", f"audio/{dest.name}")

    def control(self, u: Utterance) -> ReferenceStyle:
        if u.id not in self._refs:
            wav = load_wav(u.audio, self.synth.params.sample_rate)
            self._refs[u.id] = ReferenceStyle(mel_spectrogram(wav, self.synth.params))
        return self._refs[u.id]

    def say(self, controls: dict[str, StyleControl], label: str) -> Clip:
        known = {a: c for a, c in controls.items() if a in self.synth.attributes}
        result = self.synth.say(self.text, known, seed=0)
        self.n += 1
        path = self.synth.write(result, self.out / "audio" / f"syn-{self.n:03d}.wav")
        return Clip(label, f"audio/{path.name}")


def _pick_references(corpus: Corpus, rows: int, cols: int) -> tuple[str, str | None, list[Utterance], list[Utterance]]:
    """Row references (one per value of the first attribute) and column references (one per value of the second,
    each from a speaker not used by the rows where the corpus allows), preferring held-out utterances."""
    attrs = corpus.attributes
    row_attr, col_attr = attrs[0], attrs[1] if len(attrs) > 1 else None
    pool = corpus.split("test") or corpus.utterances
    by_row = {}
    for u in sorted(pool, key=lambda u: u.id):
        by_row.setdefault(u.attrs[row_attr], u)
    row_refs = [by_row[v] for v in sorted(by_row)[:rows]]
    if col_attr is None:
        return row_attr, None, row_refs, []
    used = {u.attrs[row_attr] for u in row_refs}
    col_refs = []
    for k, value in enumerate(sorted({u.attrs[col_attr] for u in pool})[:cols]):
        cands = sorted((u for u in pool if u.attrs[col_attr] == value), key=lambda u: (u.attrs[row_attr] in used, u.id))
        col_refs.append(cands[k % max(1, min(len(cands), 3))])
    return row_attr, col_attr, row_refs, col_refs


@dataclass
class Grid:
    """The control grid: column reference clips, and per row its reference clip and the model's cells."""

    row_attr: str
    col_attr: str | None
    columns: list[Clip] = field(default_factory=list)
    rows: list[tuple[Clip, list[Clip]]] = field(default_factory=list)


def _markdown_blocks(md: str) -> list[dict[str, Any]]:
    """The evaluation report's markdown -> blocks for the template: headings, paragraphs, pipe tables."""
    blocks: list[dict[str, Any]] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            blocks.append({"kind": "table", "head": table[0], "rows": table[2:]})
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if line.startswith("#"):
            blocks.append({"kind": "heading", "text": line.lstrip("#").strip()})
        elif line.strip():
            blocks.append({"kind": "paragraph", "text": line})
    flush()
    return blocks


def _evaluation(eval_dir: Path | None, out: Path) -> dict[str, Any] | None:
    """The report's blocks and its confusion matrices (copied into PAGE/img), or None without a report."""
    if eval_dir is None or not (eval_dir / "report.md").exists():
        return None
    (out / "img").mkdir(exist_ok=True)
    images = []
    for png in sorted(eval_dir.glob("confusion_*.png")):
        shutil.copy(png, out / "img" / png.name)
        images.append(png.name)
    return {"blocks": _markdown_blocks((eval_dir / "report.md").read_text()), "images": images}


def _grid(
    page: Page, row_attr: str, col_attr: str | None, row_refs: list[Utterance], col_refs: list[Utterance]
) -> Grid:
    """Every row reference crossed with every column reference (or alone when there is no second attribute)."""
    grid = Grid(row_attr, col_attr, [page.reference(c) for c in col_refs])
    for r in row_refs:
        cells = []
        for c in col_refs or [None]:
            controls: dict[str, StyleControl] = {row_attr: page.control(r)}
            label = r.attrs[row_attr]
            if c is not None and col_attr:
                controls[col_attr] = page.control(c)
                label = f"{label} × {c.attrs[col_attr]}"
            cells.append(page.say(controls, label))
        grid.rows.append((page.reference(r), cells))
    return grid


def _style_sections(
    page: Page, base: dict[str, StyleControl], target: str, refs: list[Utterance], tokens: int
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(interpolation between the first and last reference, or None; single tokens then seeded random tokens)
    on the `target` sub-encoder."""
    interpolation = None
    if len(refs) >= 2:
        a, b = refs[0], refs[-1]
        clips = [
            page.say(
                {**base, target: InterpolatedStyle(page.control(a).mel, page.control(b).mel, alpha)}, f"alpha {alpha}"
            )
            for alpha in (0.0, 0.25, 0.5, 0.75, 1.0)
        ]
        interpolation = {"attr": target, "start": a.id, "end": b.id, "clips": clips}
    sub = page.synth.model.style.subs[page.synth.attributes.index(target)]
    clips = [
        page.say({**base, target: TokenWeights({k: 1.0})}, f"token {k}")
        for k in range(min(tokens, sub.tokens.n_tokens))
    ]
    clips += [page.say({**base, target: RandomTokens(seed)}, f"random, seed {seed}") for seed in (0, 1)]
    return interpolation, {"attr": target, "n_tokens": sub.tokens.n_tokens, "clips": clips}


def _render(**context: Any) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("toonlab.tts", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    return env.get_template("listen.html.j2").render(**context)


def build_demo(
    run: Path,
    corpus_dir: Path,
    out: Path,
    rows: int = 4,
    cols: int = 4,
    text: str | None = None,
    eval_dir: Path | None = None,
    tokens: int = 4,
    vocoder: str = "griffin-lim",
    device: str = "cpu",
) -> Path:
    """Synthesise the page's clips and write `out/index.html`; returns its path."""
    run = Path(run)
    synth = Synthesizer.load(run, vocoder, device=device)
    corpus = Corpus.load(corpus_dir)
    held_out = corpus.split("test") or corpus.utterances
    text = text or sorted(held_out, key=lambda u: u.id)[0].text
    out.mkdir(parents=True, exist_ok=True)
    page = Page(synth, out, text)
    row_attr, col_attr, row_refs, col_refs = _pick_references(corpus, rows, cols)
    grid = _grid(page, row_attr, col_attr, row_refs, col_refs)
    target = col_attr if col_attr in synth.attributes else synth.attributes[-1]
    refs = col_refs if target == col_attr and len(col_refs) >= 2 else row_refs
    interpolation, token_clips = _style_sections(page, {row_attr: page.control(row_refs[0])}, target, refs, tokens)
    eval_dir = eval_dir or (run if run.is_dir() else run.parent) / "eval"
    index = out / "index.html"
    index.write_text(
        _render(
            name=run.name,
            attributes=synth.attributes,
            corpus=str(corpus.root),
            text=text,
            vocoder=synth.vocoder.name,
            missing=[a for a in (row_attr, col_attr) if a and a not in synth.attributes],
            grid=grid,
            interpolation=interpolation,
            tokens=token_clips,
            evaluation=_evaluation(eval_dir, out),
        )
    )
    (out / "clips.json").write_text(json.dumps({"clips": page.n, "text": text}, indent=2))
    return index


def clip_sources(index: Path) -> Sequence[str]:
    """The audio files an index.html points at (for checks)."""
    return re.findall(r'<audio[^>]* src="([^"]+)"', index.read_text())
