"""A synthetic tone corpus (no speech engine needed) for tests and smoke runs: 3 "speakers" (base F0) x 2
"styles" (pitch, rate, loudness) x 6 sentences, the last 2 held out, written as a normal corpus folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toonlab.extras import require
from toonlab.tts.manifest import write_manifest

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


def write_tone_corpus(root: str | Path, held_out: int = 2) -> Path:
    """Write the corpus into `root` (wavs/, manifest.jsonl, corpus.json); returns `root`."""
    sf = require("soundfile")
    root = Path(root)
    (root / "wavs").mkdir(parents=True, exist_ok=True)
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
                        "split": "test" if si >= len(SENTENCES) - held_out else "train",
                        "speaker": spk,
                        "style": st,
                    }
                )
    write_manifest(root, rows, ["speaker", "style"])
    return root
