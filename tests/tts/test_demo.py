"""`toonlab tts demo`: the listening page for a micro model, checked in headless Chromium (every audio element
loads with a duration, the evaluation table and confusion matrices show, no console errors, a screenshot)."""

from __future__ import annotations

import re

import pytest
from chromium_devtools import browser_fixture  # noqa: F401  (the `browser` fixture)
from typer.testing import CliRunner

pytest.importorskip("librosa")

from toonlab.cli import app  # noqa: E402
from toonlab.tts.demo import Clip, Grid, _render, clip_sources  # noqa: E402

# Wait until every <audio> has metadata (readyState >= 1) or failed; report what each reached.
AUDIO_LOADED = """
(async () => {
  const clips = Array.from(document.querySelectorAll('audio'));
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && !clips.every((a) => a.readyState >= 1 || a.error))
    await new Promise((r) => setTimeout(r, 50));
  return clips.map((a) => ({src: a.getAttribute('src'), ready: a.readyState, duration: a.duration,
                            error: a.error ? a.error.code : null}));
})()
"""


@pytest.fixture(scope="module")
def page(tone_corpus, micro_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("page")
    evaluation = out / "eval"
    args = ["tts", "evaluate", str(micro_run), "--corpus", str(tone_corpus), "--out", str(evaluation)]
    assert CliRunner().invoke(app, [*args, "--cases", "2", "--per-cell", "2", "--no-asr"]).exit_code == 0
    result = CliRunner().invoke(
        app, ["tts", "demo", str(micro_run), "--corpus", str(tone_corpus), "--out", str(out), "--eval", str(evaluation)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_page_files(page):
    index = page / "index.html"
    sources = clip_sources(index)
    # grid: 3 speaker refs + 2 style refs + 3 x 2 cells; 5 interpolation steps; 4 tokens + 2 random
    assert len(sources) == 3 + 2 + 6 + 5 + 4 + 2
    assert all((page / s).stat().st_size > 1000 for s in sources)
    text = index.read_text()
    assert "Control grid" in text and "Interpolation" in text and "Token weights" in text
    assert re.search(r"<table>\s*<tr><th>judge</th>", text) and "degraded real" in text
    assert "img/confusion_style.png" in text


def test_page_escapes_what_it_did_not_write():
    """Sentence, labels and report text reach the page as text, never as markup."""
    hostile = '<script>alert(1)</script> & "q"'
    clip = Clip(hostile, 'audio/a"b.wav')
    html = _render(
        name=hostile,
        attributes=["speaker", "style"],
        corpus=hostile,
        text=hostile,
        vocoder="griffin-lim",
        missing=[],
        grid=Grid("speaker", "style", [clip], [(clip, [clip])]),
        interpolation=None,
        tokens={"attr": "style", "n_tokens": 4, "clips": [clip]},
        evaluation={"blocks": [{"kind": "paragraph", "text": hostile}], "images": []},
    )
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;q&#34;" in html
    assert 'src="audio/a&#34;b.wav"' in html


def test_page_in_headless_chromium(page, browser, tmp_path):
    browser.open(page / "index.html")
    clips = browser.evaluate(AUDIO_LOADED)
    assert len(clips) == len(clip_sources(page / "index.html"))
    bad = [c for c in clips if c["ready"] < 1 or not c["duration"] or c["error"] is not None]
    assert bad == []
    images = browser.evaluate("Array.from(document.images).map((i) => i.complete && i.naturalWidth > 0)")
    assert images and all(images)
    assert browser.errors() == []
    shot = tmp_path / "demo.png"
    browser.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
