"""The fetched real media: every manifest entry decodes and its recorded facts hold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.realmedia

VIDEO_SUFFIXES = {".avi", ".mkv", ".mp4", ".mpg", ".webm", ".mov"}


@pytest.fixture(scope="module")
def clips(media_dir: Path) -> list[dict]:
    return json.loads((media_dir / "manifest.json").read_text())["clips"]


def test_manifest_matches_folder(media_dir: Path, clips: list[dict]) -> None:
    listed = [c["file"] for c in clips]
    on_disk = sorted(p.name for p in media_dir.iterdir() if p.suffix in VIDEO_SUFFIXES)
    assert len(listed) == len(set(listed))
    assert sorted(listed) == on_disk
    # the shot-split anchors and at least one sprite clip with known timing
    assert {"intro.mpg", "bikes.mp4", "example.avi", "bigbuckbunny.mp4"} <= set(listed)
    assert any("frames_per_drawing" in c for c in clips)


def test_every_clip_decodes_as_recorded(media_dir: Path, clips: list[dict]) -> None:
    av = pytest.importorskip("av")
    for clip in clips:
        path = media_dir / clip["file"]
        assert path.stat().st_size > 0, clip["file"]
        with av.open(str(path)) as container:
            assert container.streams.video, f"{clip['file']}: no video stream"
            stream = container.streams.video[0]
            frames = 0
            for frame in container.decode(stream):
                if frames == 0:
                    assert (frame.width, frame.height) == (clip["width"], clip["height"]), clip["file"]
                frames += 1
            rate = float(stream.average_rate or stream.guessed_rate)
        assert frames > 0, clip["file"]
        assert abs(frames - clip["frames"]) <= max(2, clip["frames"] // 100), (clip["file"], frames)
        assert rate == pytest.approx(clip["fps"], rel=0.02), clip["file"]


def test_recorded_facts_are_sane(clips: list[dict]) -> None:
    for clip in clips:
        name = clip["file"]
        assert clip["origin"].split(":")[0] in {"debian", "pypi"}, name
        assert clip["licence"] and clip["version"], name
        assert min(clip["frames"], clip["duration_s"], clip["width"], clip["height"]) > 0, name
        assert clip["frames"] == pytest.approx(clip["duration_s"] * clip["fps"], rel=0.05, abs=2), name
        shots = clip["expected_shots"]
        assert isinstance(shots, int) and shots >= 1, name
        starts = clip.get("shot_starts_s")
        if starts is not None:
            assert len(starts) == shots and starts[0] == 0.0, name
            assert starts == sorted(starts) and starts[-1] < clip["duration_s"], name
        if "frames_per_drawing" in clip:
            held = clip["drawings"] * clip["frames_per_drawing"]
            assert held <= clip["frames"] <= held + clip["drawings"], name
    by_name = {c["file"]: c for c in clips}
    assert by_name["intro.mpg"]["expected_shots"] == 16
    assert by_name["bikes.mp4"]["expected_shots"] == 6
    assert by_name["bikes.mp4"]["cartoon"] is False
