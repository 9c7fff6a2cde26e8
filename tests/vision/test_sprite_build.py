"""`build-sprites` end to end on the tiny synthetic set: clips with the game's holds, labels per shot, a
character-disjoint split, and a resumable rerun."""

from __future__ import annotations

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.sidecar import read_dataset
from toonlab.vision.sprites import labels, timing, wesnoth
from toonlab.vision.sprites.build import CLIPS_DIR, BuildConfig, build

CONFIG = BuildConfig(size=64, min_seconds=1.0)


@pytest.fixture(scope="module")
def built(sprite_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("sprite-set")
    return out, build(sprite_root, out, CONFIG, val=0.3, test=0.3, seed=3)


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]


def test_clips_show_each_drawing_for_its_duration(built, sprite_root):
    out, stats = built
    anim = next(a for a in wesnoth.read(sprite_root / wesnoth.PACKAGE) if a.labels["action"] == "attacking")
    order, durations = timing.repeat_to([d.duration_ms for d in anim.drawings], 1000, anim.loops)
    expected = [order[i] for i in timing.schedule(durations)]  # drawing index per frame
    # 65, 75, 75, 125 ms end at 1.56, 3.36, 5.16, 8.16 frames: 2, 1, 2, 3 frames (rounded cumulatively)
    assert expected[:9] == [0, 0, 1, 2, 2, 3, 3, 3, 0]
    frames = _frames(out / CLIPS_DIR / f"{anim.clip_id}-plain.mp4")
    assert len(frames) == len(expected) == 24  # three plays of 340 ms (two are under 1 s): 1020 ms
    changed = [np.abs(frames[i] - frames[i - 1]).mean() > 2 for i in range(1, len(frames))]
    assert changed == [expected[i] != expected[i - 1] for i in range(1, len(expected))]
    assert stats["render"]["render_errors"] == []


def test_every_shot_has_labels_and_captions(built):
    out, stats = built
    table = read_dataset(out).to_pylist()
    assert stats["labels"]["shots_without_labels"] == 0 and len(table) == stats["curate"]["shots"] > 0
    assert {r["package"] for r in table} == {"wesnoth-1.16-data", "supertux-data", "frozen-bubble-data"}
    for row in table:
        assert row["character"] and row["action"] and row["licence"] and row["caption"].endswith(".")
        assert "zorblax" not in row["caption"].lower()
    wes = [r for r in table if r["package"] == "wesnoth-1.16-data"]
    assert all(r["caption_description"].endswith("northern woods.") for r in wes)
    assert {r["direction"] for r in wes} >= {"right", "left"}  # mirrored copies
    assert {r["background"].split(":")[0] for r in table} == {"plain", "tiled"}
    row = next(r for r in table if r["clip_id"].startswith("supertux-snowball-snowball-walk-left"))
    assert row["mean_hold"] == 2.0  # 12 fps drawings on twos at 24 fps
    assert set(labels.LABEL_COLUMNS) <= set(table[0])


def test_split_keeps_each_character_on_one_side(built):
    out, stats = built
    sides: dict[str, set[str]] = {}
    for row in read_dataset(out, ["split", "character_group"]).to_pylist():
        sides.setdefault(row["character_group"], set()).add(row["split"])
    assert len(sides) == 3 and all(len(s) == 1 for s in sides.values())
    assert stats["split"]["params"]["group_by"] == "character_group"
    assert stats["summary"]["all"]["characters"] == 3


def test_rerun_renders_nothing_new(built, sprite_root):
    out, stats = built
    clips = sorted((out / CLIPS_DIR).glob("*.mp4"))
    before = {p: p.stat().st_mtime_ns for p in clips}
    again = build(sprite_root, out, CONFIG, val=0.3, test=0.3, seed=3)
    assert {p: p.stat().st_mtime_ns for p in clips} == before
    assert again["curate"]["sources"]["skipped_done"] == len(clips)
    assert again["summary"]["all"]["shots"] == stats["summary"]["all"]["shots"]


def test_cli_errors_are_clear(tmp_path):
    result = CliRunner().invoke(app, ["vision", "build-sprites", str(tmp_path / "o"), "--sprites", str(tmp_path)])
    assert result.exit_code == 2 and "fetch_sprites.sh" in result.output
    result = CliRunner().invoke(app, ["vision", "build-sprites", str(tmp_path / "o"), "--backgrounds", "stripes"])
    assert result.exit_code == 2 and "--backgrounds" in result.output
