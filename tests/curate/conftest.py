"""Synthetic clips with exact ground truth, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from synth import ShotSpec, SynthClip, standard_cut_set, write_clip


@pytest.fixture(scope="session")
def cut_set(tmp_path_factory) -> list[SynthClip]:
    return standard_cut_set(tmp_path_factory.mktemp("cutset"))


@pytest.fixture(scope="session")
def two_clips(tmp_path_factory) -> list[SynthClip]:
    """A small input folder: one clip with a cut, a flash and a pan; one clip on threes then a still."""
    folder = tmp_path_factory.mktemp("inputs")
    return [
        write_clip(folder / "a.mp4", [ShotSpec(40, 2, flashes=(20,), seed=31), ShotSpec(30, 1, pan=True, seed=32)]),
        write_clip(folder / "b.mp4", [ShotSpec(36, 3, seed=33), ShotSpec(24, 24, seed=34)]),
    ]


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory, two_clips) -> dict[str, Path]:
    """Broken files of every kind the issue names, each with a video extension."""
    import av
    import numpy as np

    folder = tmp_path_factory.mktemp("bad")
    good = two_clips[0].path.read_bytes()
    files = {
        "empty": folder / "empty.mp4",
        "random": folder / "random.mkv",
        "truncated": folder / "truncated.mp4",
        "audio_only": folder / "audio_only.m4a",
        "corrupt_stream": folder / "corrupt.avi",
    }
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["truncated"].write_bytes(good[: len(good) // 2])
    with av.open(str(files["audio_only"]), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        samples = (np.sin(np.arange(16000) / 10.0) * 0.3).astype(np.float32)[None, :]
        for i in range(0, 16000, 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i : i + 1024], format="fltp", layout="mono")
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    clip = write_clip(folder / "for_corrupt.avi", [ShotSpec(60, 1, seed=35)], codec="mpeg4")
    data = bytearray(clip.path.read_bytes())
    rng = np.random.default_rng(1)
    start = len(data) // 5
    data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    files["corrupt_stream"].write_bytes(bytes(data))
    clip.path.unlink()
    return files
