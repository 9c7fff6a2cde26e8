"""Two captions per clip, written from its labels: what it looks like and does (no proper names), and the same
followed by the game's own description of the character, when the game has one (Wesnoth units)."""

from __future__ import annotations

from toonlab.vision.sprites.model import Animation

FACING = {
    "right": "facing right",
    "left": "facing left",
    "up-right": "facing up and to the right",
    "up-left": "facing up and to the left",
    "away": "facing away",
    "towards": "facing the viewer",
    "none": "",
}


def appearance_action(anim: Animation) -> str:
    """ "A female elf armed with a sword and a bow, shooting a bow, facing right." """
    parts = [anim.appearance, anim.action_phrase, FACING.get(anim.labels.get("direction", "none"), "")]
    text = ", ".join(p.strip() for p in parts if p.strip())
    return text[:1].upper() + text[1:] + "."


def with_description(anim: Animation) -> str:
    """The first caption, then the character's description (the first caption alone when there is none)."""
    first = appearance_action(anim)
    return f"{first} {anim.description.strip()}" if anim.description.strip() else first
