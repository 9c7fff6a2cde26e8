"""`toonlab tts demo RUN --corpus DIR --out PAGE`: a static listening page for a trained run.

Sections: a control grid (rows: speaker references, columns: style references, each cell the model speaking one
held-out sentence with that pair), an interpolation between two style references, single-token weights and seeded
random tokens per sub-encoder, and the evaluation report (`RUN/eval/report.md` and its confusion matrices) when
one exists. Everything is written under PAGE (index.html, audio/*.wav, img/*.png); the page needs no network
and no script.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from toonlab.tts.audio import load_wav, mel_spectrogram, save_wav
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.style import InterpolatedStyle, RandomTokens, ReferenceStyle, StyleControl, TokenWeights
from toonlab.tts.synthesize import Synthesizer

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; }
td, th { border: 1px solid #ddd; padding: 6px 8px; vertical-align: top; font-size: 0.9em; }
th { background: #f4f4f4; text-align: left; }
audio { width: 220px; height: 32px; display: block; }
.note { color: #555; font-size: 0.9em; } img { max-width: 420px; margin: 0.5em; border: 1px solid #ddd; }
"""


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


def _audio(clip: Clip) -> str:
    return f'<div>{html.escape(clip.label)}</div><audio controls preload="auto" src="{html.escape(clip.path)}"></audio>'


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


def _markdown_to_html(md: str) -> str:
    """The evaluation report's markdown (headings, paragraphs, pipe tables) -> HTML."""
    out, table = [], []

    def flush() -> None:
        if table:
            head, body = table[0], [r for r in table[2:]]
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
            out.append("</table>")
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if line.startswith("#"):
            out.append(f"<h3>{html.escape(line.lstrip('#').strip())}</h3>")
        elif line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def _evaluation_section(eval_dir: Path | None, out: Path) -> str:
    if eval_dir is None or not (eval_dir / "report.md").exists():
        return '<p class="note">No evaluation yet: run <code>toonlab tts evaluate RUN --corpus DIR</code>.</p>'
    parts = [_markdown_to_html((eval_dir / "report.md").read_text())]
    (out / "img").mkdir(exist_ok=True)
    for png in sorted(eval_dir.glob("confusion_*.png")):
        shutil.copy(png, out / "img" / png.name)
        parts.append(f'<img src="img/{png.name}" alt="{html.escape(png.stem)}">')
    return "\n".join(parts)


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
    body = [
        f"<h1>Listening page: {html.escape(run.name)}</h1>",
        f"<p>Sub-encoders: <b>{html.escape(', '.join(synth.attributes))}</b>. Corpus: {html.escape(str(corpus.root))}. "
        f"Every clip says: <i>{html.escape(text)}</i> (vocoder: {html.escape(synth.vocoder.name)}).</p>",
    ]
    missing = [a for a in (row_attr, col_attr) if a and a not in synth.attributes]
    if missing:
        body.append(
            f'<p class="note">This model has no sub-encoder for {", ".join(missing)}: those references '
            "are not fed to it.</p>"
        )

    # control grid
    body.append(
        f"<h2>Control grid</h2><p class='note'>Rows: {row_attr} reference; columns: "
        f"{col_attr or '(none)'} reference.</p><table><tr><th></th>"
    )
    body += [f"<th>{_audio(page.reference(c))}</th>" for c in col_refs] + ["</tr>"]
    for r in row_refs:
        body.append(f"<tr><th>{_audio(page.reference(r))}</th>")
        for c in col_refs or [None]:
            controls: dict[str, StyleControl] = {row_attr: page.control(r)}
            if c is not None and col_attr:
                controls[col_attr] = page.control(c)
            label = f"{r.attrs[row_attr]} × {c.attrs[col_attr]}" if c is not None and col_attr else r.attrs[row_attr]
            body.append(f"<td>{_audio(page.say(controls, label))}</td>")
        body.append("</tr>")
    body.append("</table>")

    # interpolation, token weights, random tokens on the style-like sub-encoder
    target = col_attr if col_attr in synth.attributes else synth.attributes[-1]
    base: dict[str, StyleControl] = {row_attr: page.control(row_refs[0])}
    refs = col_refs if target == col_attr and len(col_refs) >= 2 else row_refs
    if len(refs) >= 2:
        a, b = refs[0], refs[-1]
        body.append(f"<h2>Interpolation</h2><p class='note'>{target}: from {a.id} to {b.id}.</p><table><tr>")
        for alpha in (0.0, 0.25, 0.5, 0.75, 1.0):
            ctl = InterpolatedStyle(page.control(a).mel, page.control(b).mel, alpha)
            body.append(f"<td>{_audio(page.say({**base, target: ctl}, f'alpha {alpha}'))}</td>")
        body.append("</tr></table>")
    sub = synth.model.style.subs[synth.attributes.index(target)]
    body.append(
        f"<h2>Token weights</h2><p class='note'>{target} sub-encoder: one token at weight 1 "
        f"(of {sub.tokens.n_tokens}), then seeded random token weights.</p><table><tr>"
    )
    for k in range(min(tokens, sub.tokens.n_tokens)):
        body.append(f"<td>{_audio(page.say({**base, target: TokenWeights({k: 1.0})}, f'token {k}'))}</td>")
    for seed in (0, 1):
        body.append(f"<td>{_audio(page.say({**base, target: RandomTokens(seed)}, f'random, seed {seed}'))}</td>")
    body.append("</tr></table>")

    eval_dir = eval_dir or (run if run.is_dir() else run.parent) / "eval"
    body.append("<h2>Evaluation</h2>" + _evaluation_section(eval_dir, out))
    index = out / "index.html"
    index.write_text(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(run.name)}</title>'
        f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    (out / "clips.json").write_text(json.dumps({"clips": page.n, "text": text}, indent=2))
    return index


def clip_sources(index: Path) -> Sequence[str]:
    """The audio files an index.html points at (for checks)."""
    return re.findall(r'<audio[^>]* src="([^"]+)"', index.read_text())
