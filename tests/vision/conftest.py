"""A tiny synthetic sprite set in the packages' own layouts (Wesnoth .cfg + PNGs, SuperTux .sprite, Frozen
Bubble numbered frames), written per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toonlab.vision.sprites import frozen_bubble, supertux, wesnoth

UNIT_CFG = """#textdomain wesnoth-units
#define TEST_DEFEND IMAGE_A IMAGE_B
    [defend]
        [frame]
            image={IMAGE_A}:1,{IMAGE_B}:250,{IMAGE_A}:1
        [/frame]
    [/defend]
#enddef
[unit_type]
    id=Zorblax Thunderfoot
    name= _ "Zorblax Thunderfoot"
    race=elf
    gender=male,female
    description= _ "Zorblax guards the " +
        _ "northern woods."
    [attack]
        name=bow
        description=_"bow"
        range=ranged
        type=pierce
    [/attack]
    {TEST_DEFEND "units/test/a.png" "units/test/b.png"}
    [attack_anim]
        [filter_attack]
            name=bow
        [/filter_attack]
        [frame]
            image="units/test/a.png:65"
        [/frame]
        [if]
            hits=yes
            [frame]
                image="units/test/shoot[1~3].png:[75*2,125]"
            [/frame]
        [/if]
        [else]
            hits=no
            [frame]
                image="units/test/shoot[1~3].png:[75*2,125]"
            [/frame]
        [/else]
    [/attack_anim]
    [standing_anim]
        [frame]
            image="/etc/passwd:100,../../../b.png:100,units/test/a.png:100,units/test/c.png:100"
        [/frame]
    [/standing_anim]
    [idle_anim]
        direction=ne
        [frame]
            image="units/test/shoot[3~1].png~FL()"
            duration=42
        [/frame]
    [/idle_anim]
    [female]
        gender=female
        [idle_anim]
            [frame]
                image="units/test/a.png:100,units/test/b.png:100,units/test/c.png:100"
            [/frame]
        [/idle_anim]
    [/female]
[/unit_type]
"""

SPRITE = """(supertux-sprite
  (action (name "walk-left") (fps 12) (images "w0.png" "w1.png" "w2.png"))
  (action (name "walk-right") (mirror-action "walk-left"))
  (action (name "melting-left") (images "w2.png" "w1.png" "w0.png"))
  (action (name "squished-left") (images "w0.png"))
  (action (name "broken-left") (fps 10) (images "w0.png" "missing.png" "w1.png"))
  (action (name "escape-left") (images "../../../etc/a.png" "w0.png" "w1.png"))
)
"""


def _png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (12, 12), box: int = 0) -> None:
    """An RGBA drawing: transparent with a coloured square whose corner moves with `box`."""
    rgba = np.zeros((size[1], size[0], 4), np.uint8)
    rgba[2 + box : 8 + box, 1 + box : 7 + box] = (*colour, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba).save(path)


@pytest.fixture(scope="session")
def sprite_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sprites")
    core = root / wesnoth.PACKAGE / wesnoth.DATA
    (core / "macros").mkdir(parents=True)
    (core / "macros" / "empty.cfg").write_text("#define UNUSED\n#enddef\n")
    (core / "units" / "test").mkdir(parents=True)
    (core / "units" / "test" / "Zorblax.cfg").write_text(UNIT_CFG)
    images = core / "images" / "units" / "test"
    for i, name in enumerate(("a", "b", "c", "shoot1", "shoot2", "shoot3")):
        _png(images / f"{name}.png", (200, 40 * i, 60), box=i % 4)
    creature = root / supertux.PACKAGE / supertux.IMAGES / "creatures" / "snowball"
    for i in range(3):
        _png(creature / f"w{i}.png", (250, 250, 250 - 60 * i), (16, 16), box=i * 2)
    (creature / "snowball.sprite").write_text(SPRITE)
    tiles = root / supertux.PACKAGE / supertux.IMAGES / "tiles" / "forest"
    tiles.mkdir(parents=True)
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 4), dtype=np.uint8)
    noise[..., 3] = 255
    Image.fromarray(noise).save(tiles / "ground.png")
    pinguins = root / frozen_bubble.PACKAGE / frozen_bubble.PINGUINS
    for i in range(4):
        _png(pinguins / f"win_p1_{i + 1:04d}.png", (20, 20, 20 + 50 * i), (16, 12), box=i)
    for package in (wesnoth.PACKAGE, supertux.PACKAGE, frozen_bubble.PACKAGE):
        (root / package / "VERSION").write_text("test\n")
    return root
