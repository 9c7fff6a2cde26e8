"""Fixtures for the evaluation and listening-page tests: a tiny tone corpus (3 speakers x 2 styles x 6 sentences,
2 held out) and a micro model trained on it for two steps with the character front end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SPEAKERS = {"low": 110.0, "mid": 170.0, "high": 260.0}  # base F0 (Hz)
STYLES = {"calm": (1.0, 1.0, 0.3), "lively": (1.35, 1.3, 0.8)}  # pitch factor, rate factor, loudness
SENTENCES = [
    "The cat sat down.",
    "Open the red door now.",
    "We like green tea.",
    "Birds sing at dawn again.",
    "A small boat drifts by.",
    "Rain falls on the roof.",
]
RATE = 16000


def tone(f0: float, seconds: float, amp: float, seed: int) -> np.ndarray:
    """A harmonic 'syllable train' with vibrato: speaker = F0, style = pitch, rate and loudness."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) * (t < seconds - 0.05)
    return (amp * wav * envelope / 3 + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="session")
def tone_corpus(tmp_path_factory) -> Path:
    pytest.importorskip("librosa")
    import soundfile as sf

    from toonlab.tts.data import write_manifest

    root = tmp_path_factory.mktemp("tone_corpus")
    (root / "wavs").mkdir()
    rows = []
    for si, text in enumerate(SENTENCES):
        for spk, f0 in SPEAKERS.items():
            for st, (pitch, rate, amp) in STYLES.items():
                uid = f"{spk}-{st}-s{si}"
                seconds = (0.6 + 0.06 * len(text.split())) / rate
                sf.write(root / "wavs" / f"{uid}.wav", tone(f0 * pitch, seconds, amp, si), RATE, subtype="PCM_16")
                rows.append(
                    {
                        "id": uid,
                        "text": text,
                        "audio": f"wavs/{uid}.wav",
                        "duration": seconds,
                        "sample_rate": RATE,
                        "sentence_id": f"s{si}",
                        "split": "test" if si >= 4 else "train",
                        "speaker": spk,
                        "style": st,
                    }
                )
    write_manifest(root, rows, ["speaker", "style"])
    return root


@pytest.fixture(scope="session")
def micro_run(tone_corpus, tmp_path_factory) -> Path:
    """A micro multi-reference model trained for 2 steps (untrained quality; the plumbing is what is tested)."""
    from toonlab.tts.configs import get_config
    from toonlab.tts.train import PrintMonitor, train

    cfg = get_config("micro").with_overrides(train={"text_frontend": "characters", "val_every": 2})
    out = tmp_path_factory.mktemp("micro_run")
    train(tone_corpus, cfg, out, steps=2, threads=1, monitor=PrintMonitor(out=lambda _: None))
    return out
