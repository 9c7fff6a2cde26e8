"""Frozen Bubble penguin animations (`frozen-bubble-data`): numbered PNG sequences -> `Animation`s.

`gfx/pinguins/<action>_<penguin>_<NNNN>.png`: four actions (waiting, shooting, winning, losing) for six penguins
(`p1`, `p2` and the network players' `rp1`..`rp4`, recoloured). The game gives no per-frame timing in data
files; the sequences are played here at 12 drawings per second (each drawing held two frames at 24 fps). All six
penguins are one drawn character (recoloured), so they share one `character` label and stay on one side of a
character-grouped split.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from toonlab.vision.sprites.model import Animation, Drawing

PACKAGE = "frozen-bubble-data"
LICENCE = "GPL-2"
PINGUINS = Path("usr/share/games/frozen-bubble/gfx/pinguins")
DRAWING_MS = 1000.0 / 12
ACTIONS = {
    "wait": ("waiting", "waiting and looking around"),
    "anime-shooter": ("shooting", "working a bubble launcher"),
    "win": ("winning", "cheering after a win"),
    "loose": ("losing", "slumping after a loss"),
}
LOOKS = {
    "p1": "a penguin",
    "p2": "a penguin in the second player's colours",
}
NAME = re.compile(r"(?P<action>[a-z-]+)_(?P<penguin>r?p\d)_(?P<n>\d+)\.png")


def read(root: Path, min_drawings: int = 3) -> Iterator[Animation]:
    """All penguin animations under an unpacked `frozen-bubble-data` (the folder holding `usr/`)."""
    folder = Path(root) / PINGUINS
    sequences: dict[tuple[str, str], list[tuple[int, Path]]] = defaultdict(list)
    for png in folder.glob("*.png") if folder.is_dir() else ():
        match = NAME.fullmatch(png.name)
        if match and match["action"] in ACTIONS:
            sequences[match["action"], match["penguin"]].append((int(match["n"]), png))
    for (action, penguin), numbered in sorted(sequences.items()):
        files = [p for _, p in sorted(numbered)]
        if len(files) < min_drawings:
            continue
        label, phrase = ACTIONS[action]
        labels = {
            "character": "frozen-bubble-penguin",
            "variant": penguin,
            "kind": "penguin",
            "action": label,
            "direction": "towards",
            "package": PACKAGE,
            "licence": LICENCE,
        }
        drawings = [Drawing(f, DRAWING_MS) for f in files]
        look = LOOKS.get(penguin, "a penguin in a network player's colours")
        yield Animation(f"frozen-bubble-{action}-{penguin}", drawings, labels, look, phrase, loops=action == "wait")
