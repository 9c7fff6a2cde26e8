"""The readers and renderer on the real Debian packages (scripts/fetch_sprites.sh)."""

from __future__ import annotations

from collections import Counter

import av
import pytest

from toonlab.vision.sprites import captions, frozen_bubble, render, supertux, timing, wesnoth
from toonlab.vision.sprites.build import BuildConfig, read_animations

pytestmark = pytest.mark.realmedia


@pytest.fixture(scope="module")
def real(sprites_dir):
    return read_animations(sprites_dir, BuildConfig())


def test_every_package_yields_many_labelled_animations(real):
    per_package = Counter(a.labels["package"] for a in real)
    assert per_package[wesnoth.PACKAGE] >= 1200  # ~690 unit animations, each also mirrored
    assert per_package[supertux.PACKAGE] >= 300
    assert per_package[frozen_bubble.PACKAGE] == 24  # 4 actions x 6 penguins
    characters = {a.labels["character"] for a in real}
    assert len(characters) >= 250
    assert all(a.distinct_drawings() >= 3 and all(d.duration_ms >= 0 for d in a.drawings) for a in real)
    actions = Counter(a.labels["action"] for a in real if a.labels["package"] == wesnoth.PACKAGE)
    assert actions["attacking"] > actions["idling"] > 0 and actions["dying"] > 0


def test_the_archers_bow_attack_has_the_games_timing(real):
    bow = next(a for a in real if a.clip_id == "wesnoth-elvish-archer-male-attacking-bow-1")
    # archer.cfg: archer-bow.png:65, archer-bow-attack[1~4].png:[75*2,100,130], archer-bow.png:65
    assert [(d.image.name, d.duration_ms) for d in bow.drawings] == [
        ("archer-bow.png", 65),
        ("archer-bow-attack1.png", 75),
        ("archer-bow-attack2.png", 75),
        ("archer-bow-attack3.png", 100),
        ("archer-bow-attack4.png", 130),
        ("archer-bow.png", 65),
    ]
    assert bow.labels["kind"] == "elf" and bow.labels["attack_range"] == "ranged"
    assert "proficient archers" in captions.with_description(bow)


def test_first_captions_name_no_character(real):
    for anim in real:
        first = captions.appearance_action(anim).lower()
        name = anim.labels["character"].lower()
        if " " in name:  # multi-word unit names ("Elvish Archer", "Dwarvish Fighter") are proper names here
            assert name not in first, first
        assert "tux" not in first and "nolok" not in first, first


def test_a_real_clip_renders_at_24_fps_with_its_holds(real, tmp_path):
    bow = next(a for a in real if a.clip_id == "wesnoth-elvish-archer-male-attacking-bow-1")
    stats = render.render_clip(bow, tmp_path / "bow.mp4", render.Background(), size=128, min_ms=2000)
    order, durations = timing.repeat_to([d.duration_ms for d in bow.drawings], 2000, bow.loops)
    with av.open(str(tmp_path / "bow.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 24 and (stream.width, stream.height) == (128, 128)
        assert sum(1 for _ in container.decode(video=0)) == stats["frames"] == len(timing.schedule(durations))
    assert 1.5 < stats["mean_hold"] < 3  # 65-130 ms drawings: mostly twos and threes
