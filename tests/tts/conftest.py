"""Fixtures for the TTS tests: the tiny tone corpus of `toonlab.tts.tone_corpus` (3 speakers x 2 styles x 6 sentences,
2 held out) and a micro model trained on it for two steps with the character front end."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    pytest.importorskip("librosa")
    from toonlab.tts.tone_corpus import write_tone_corpus

    return write_tone_corpus(tmp_path_factory.mktemp("tone_corpus"))


@pytest.fixture(scope="session")
def micro_run(tone_corpus, tmp_path_factory) -> Path:
    """A micro multi-reference model trained for 2 steps (untrained quality; the plumbing is what is tested)."""
    from toonlab.tts.configs import get_config
    from toonlab.tts.train import PrintMonitor, train

    cfg = get_config("micro").with_overrides(train={"text_frontend": "characters", "val_every": 2})
    out = tmp_path_factory.mktemp("micro_run")
    train(tone_corpus, cfg, out, steps=2, threads=1, monitor=PrintMonitor(out=lambda _: None))
    return out
