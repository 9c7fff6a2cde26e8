"""What every package reader yields: an animation (drawings with durations) and its labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Drawing:
    """One drawing (an image file) shown for `duration_ms`; `flip` mirrors it left-right."""

    image: Path
    duration_ms: float
    flip: bool = False


@dataclass
class Animation:
    """One animation of one character, as the game plays it once.

    `labels`: character (the group key: one unit type or creature), variant (gender, variation, costume), kind
    (race or creature class), action, direction, package, licence, plus free-form extras (attack, range, ...).
    `appearance` is a plain noun phrase with no proper names ("a female elf armed with a sword and a bow");
    `action_phrase` says what it does ("shooting a bow"); `description` is the game's own text, when it has one.
    `loops`: whether the game repeats it (idle, walk) rather than playing it once and holding the last drawing.
    `extra`: package-specific settings for the renderer (e.g. Wesnoth's team-colour recolouring).
    """

    clip_id: str
    drawings: list[Drawing]
    labels: dict[str, str]
    appearance: str
    action_phrase: str
    description: str = ""
    loops: bool = True
    align: str = "center"  # how drawings of different sizes line up: "center" (Wesnoth) or "topleft" (SuperTux)
    extra: dict[str, str] = field(default_factory=dict)

    def distinct_drawings(self) -> int:
        return len({(d.image, d.flip) for d in self.drawings})


MIRROR = {"right": "left", "left": "right", "up-right": "up-left", "up-left": "up-right"}


def mirrored(anim: Animation) -> Animation:
    """The same animation drawn facing the other way, as the game shows a unit that turns around."""
    labels = {**anim.labels, "direction": MIRROR.get(anim.labels.get("direction", ""), anim.labels["direction"])}
    drawings = [Drawing(d.image, d.duration_ms, not d.flip) for d in anim.drawings]
    return Animation(
        f"{anim.clip_id}-mirrored",
        drawings,
        labels,
        anim.appearance,
        anim.action_phrase,
        anim.description,
        anim.loops,
        anim.align,
        dict(anim.extra),
    )
