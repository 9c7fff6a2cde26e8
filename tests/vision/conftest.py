"""Test data for the vision tests: a tiny synthetic sprite set in the packages' own layouts (Wesnoth .cfg + PNGs,
SuperTux .sprite, Frozen Bubble numbered frames), and a tiny labelled curated dataset (synthetic clips through
`toonlab curate`, a split, and a labels sidecar)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.sidecar import metadata_files, read_shard, write_sidecar
from toonlab.vision.sprites import frozen_bubble, supertux, wesnoth

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "curate"))  # the synthetic-clip maker lives there
from synth import ShotSpec, write_clip  # noqa: E402

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


KINDS = ("knight", "blob", "bird")
ACTIONS = ("walk", "attack")


def label_of(video: int) -> dict[str, str]:
    kind, action = KINDS[video % 3], ACTIONS[video // 3 % 2]
    return {"kind": kind, "action": action, "caption": f"a {kind} does a {action}"}


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    """12 one-shot videos (24 frames on twos, 48x48), split train 8 / val 2 / test 2, with kind/action/caption."""
    root = tmp_path_factory.mktemp("labelled")
    clips = [write_clip(root / f"in/v{i:02d}.mp4", [ShotSpec(24, 2, seed=70 + i)], size=(48, 48)) for i in range(12)]
    out = root / "out"
    stats = run_curate([str(c.path) for c in clips], out, CurateConfig())
    assert stats.sources.failed == 0
    tables = {}
    for meta in metadata_files(out):
        rows = read_shard(out, meta, ["identifier", "video_id"]).to_pylist()
        columns = {"identifier": [r["identifier"] for r in rows], "split": [], "kind": [], "action": [], "caption": []}
        for r in rows:
            video = int(r["video_id"][1:3])  # "v07-<hash>"
            columns["split"].append("test" if video in (10, 11) else "val" if video in (8, 9) else "train")
            for name, value in label_of(video).items():
                columns[name].append(value)
        tables[meta.stem] = pa.table(columns)
    write_sidecar(out, "split", {k: t.select(["identifier", "split"]) for k, t in tables.items()}, {"fixed": True})
    labels = {k: t.select(["identifier", "kind", "action", "caption"]) for k, t in tables.items()}
    write_sidecar(out, "labels", labels, {"synthetic": True})
    return out
