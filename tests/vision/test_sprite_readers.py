"""The package readers on tiny synthetic definitions: WML macros and brackets, SuperTux mirrors, timings."""

from __future__ import annotations

import pytest

from toonlab.vision.sprites import captions, frozen_bubble, supertux, timing, wesnoth, wml
from toonlab.vision.sprites.groups import character_groups
from toonlab.vision.sprites.model import Animation, Drawing, mirrored


def test_wml_macros_quotes_concatenation_and_amendments():
    macros = wml.collect_macros("#define PAIR A B\n[pair]\n    left={A}\n    right={B}\n[/pair]\n#enddef\n")
    text = '[top]\n  {PAIR "x y" (p q)}\n  name= _ "one " +\n     "two"  # comment\n[/top]\n[+top]\n  extra=1\n[/top]\n'
    root = wml.parse(wml.preprocess(text, macros))
    top = root.first("top")
    assert len(root.all("top")) == 1 and top.keys == {"name": "one two", "extra": "1"}
    assert top.first("pair").keys == {"left": "x y", "right": "p q"}
    assert wml.parse(wml.preprocess("#ifdef NOPE\n[a]\n[/a]\n#else\n[b]\n[/b]\n#endif\n", {})).children[0].name == "b"
    with pytest.raises(wml.WMLError, match="closes"):
        wml.parse("[a]\n[/b]\n")
    with pytest.raises(wml.WMLError, match="never closed"):
        wml.parse("[a]\n")
    with pytest.raises(wml.WMLError, match="nested too deeply"):
        wml.expand("{LOOP}", wml.collect_macros("#define LOOP\n{LOOP}\n#enddef\n"))


def test_bracket_expansion_and_image_functions():
    assert wesnoth.expand_brackets("a[1~3].png:[75*2,100]") == ["a1.png:75", "a2.png:75", "a3.png:100"]
    assert wesnoth.expand_brackets("f[3~1,09~10].png") == ["f3.png", "f2.png", "f1.png", "f09.png", "f10.png"]
    assert wesnoth.expand_brackets("a[1~3].png:[50,60]") is None  # groups of different lengths
    assert wesnoth.parse_image("units/a.png~CROP(0,1,2,3)~FL():120") == ("units/a.png", True, 120.0)
    assert wesnoth.parse_image("units/a.png~RC(magenta>red)") == ("units/a.png", False, None)


def test_wesnoth_unit_animations(sprite_root):
    anims = {a.clip_id: a for a in wesnoth.read(sprite_root / wesnoth.PACKAGE)}
    attack = anims["wesnoth-zorblax-thunderfoot-male-attacking-bow-1"]
    assert [(d.image.name, d.duration_ms) for d in attack.drawings] == [
        ("a.png", 65),
        ("shoot1.png", 75),
        ("shoot2.png", 75),
        ("shoot3.png", 125),
    ]
    assert "wesnoth-zorblax-thunderfoot-male-attacking-bow-2" not in anims  # the miss branch draws the same
    assert attack.labels["attack_range"] == "ranged" and attack.labels["kind"] == "elf"
    assert attack.labels["direction"] == "right" and attack.description == "Zorblax guards the northern woods."
    idle = anims["wesnoth-zorblax-thunderfoot-male-idling-1"]
    assert [d.image.name for d in idle.drawings] == ["shoot3.png", "shoot2.png", "shoot1.png"]
    assert all(d.flip and d.duration_ms == 42 for d in idle.drawings) and idle.labels["direction"] == "up-right"
    female = anims["wesnoth-zorblax-thunderfoot-female-idling-1"]
    assert female.labels["character"] == "Zorblax Thunderfoot" and female.labels["variant"] == "female"
    # the macro's defence is a 250 ms hold between two 1 ms frames: two distinct drawings, left out (< 3)
    assert not any(a.labels["action"] == "defending" for a in anims.values())
    assert not any(a.labels["action"] == "standing" for a in anims.values())  # paths outside the image folder


def test_supertux_actions(sprite_root):
    anims = {a.labels["action"] + "-" + a.labels["direction"]: a for a in supertux.read(sprite_root / supertux.PACKAGE)}
    assert set(anims) == {"walk-left", "walk-right", "melting-left"}  # 1 drawing, missing file, '..' left out
    left, right = anims["walk-left"], anims["walk-right"]
    assert [d.duration_ms for d in left.drawings] == pytest.approx([1000 / 12] * 3)
    assert [d.image for d in right.drawings] == [d.image for d in left.drawings]
    assert all(d.flip for d in right.drawings) and not any(d.flip for d in left.drawings)
    assert anims["melting-left"].drawings[0].duration_ms == pytest.approx(100.0)  # SuperTux's default 10 fps
    assert left.labels["kind"] == "snow" and captions.appearance_action(left) == (
        "A walking snowball, walking, facing left."
    )
    with pytest.raises(ValueError, match="unbalanced"):
        supertux.parse_sexpr("(supertux-sprite (action")


def test_frozen_bubble_sequence(sprite_root):
    (anim,) = frozen_bubble.read(sprite_root / frozen_bubble.PACKAGE)
    assert [d.image.name for d in anim.drawings] == [f"win_p1_{i:04d}.png" for i in range(1, 5)]
    assert anim.labels["character"] == "frozen-bubble-penguin" and not anim.loops


def test_schedule_honours_holds_at_24_fps():
    assert timing.schedule([125, 125]) == [0, 0, 0, 1, 1, 1]  # 3 frames each
    assert timing.schedule([1000 / 12] * 3) == [0, 0, 1, 1, 2, 2]  # on twos
    assert timing.schedule([1, 250, 1]) == [1] * 6  # 1 ms frames show on no frame; 250 ms -> 6 frames
    assert len(timing.schedule([75, 75, 100, 130])) == round(380 * 24 / 1000)  # cumulative rounding: no drift
    order, durations = timing.repeat_to([100, 200], 700, loops=True)
    assert order == [0, 1, 0, 1, 0, 1] and sum(durations) == 900
    order, durations = timing.repeat_to([100, 200], 700, loops=False)
    assert order == [0, 1] and durations == [100, 600]
    with pytest.raises(ValueError):
        timing.schedule([-1])


def test_captions_carry_no_proper_names(sprite_root):
    for anim in wesnoth.read(sprite_root / wesnoth.PACKAGE):
        first = captions.appearance_action(anim)
        assert "zorblax" not in first.lower() and "thunderfoot" not in first.lower()
        assert captions.with_description(anim) == f"{first} Zorblax guards the northern woods."
    attack = next(a for a in wesnoth.read(sprite_root / wesnoth.PACKAGE) if a.labels["action"] == "attacking")
    assert captions.appearance_action(attack) == "A male elf armed with a bow, shooting a bow, facing right."
    flipped = mirrored(attack)
    assert captions.appearance_action(flipped).endswith("facing left.") and all(d.flip for d in flipped.drawings)


def test_characters_sharing_a_drawing_form_one_group(sprite_root, tmp_path):
    images = sorted((sprite_root / wesnoth.PACKAGE / wesnoth.DATA / "images/units/test").glob("*.png"))
    copy = tmp_path / "same-pixels.png"
    copy.write_bytes(images[0].read_bytes())

    def anim(character: str, files) -> Animation:
        return Animation(character, [Drawing(f, 100) for f in files], {"character": character}, "x", "y")

    groups = character_groups([anim("b", images[:2]), anim("a", [copy, images[3]]), anim("c", images[4:])])
    assert groups == {"b": "a", "a": "a", "c": "c"}
