"""Leakage groups: characters that share a drawing belong together on one side of a split.

Two characters are linked when any of their drawings are pixel-identical (the same RGBA content, mirrored or
not: a campaign variant reusing a core unit's frames, a creature whose sprite set points at another's files);
linked characters form a group by union-find, named by its smallest character id. Fully transparent drawings
(blank spacer frames) link nothing. This is exact where a perceptual hash is not: on these renders a small
sprite over a flat background gives pHashes that match across unrelated characters.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from toonlab.vision.sprites import render
from toonlab.vision.sprites.model import Animation


def drawing_key(path: Path) -> str | None:
    """Content hash of a drawing (shape + RGBA bytes); None for a blank or unreadable one."""
    try:
        rgba = render.load_rgba(path)
    except (OSError, ValueError):
        return None
    if not rgba[..., 3].any():
        return None
    return hashlib.sha256(repr(rgba.shape).encode() + rgba.tobytes()).hexdigest()


def character_groups(anims: list[Animation]) -> dict[str, str]:
    """character -> its group (the smallest character id among those it shares a drawing with, transitively)."""
    parent: dict[str, str] = {}

    def find(c: str) -> str:
        parent.setdefault(c, c)
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    owner: dict[str, str] = {}
    for anim in anims:
        character = anim.labels["character"]
        find(character)
        for image in {d.image for d in anim.drawings}:
            key = drawing_key(image)
            if key is None:
                continue
            other = owner.setdefault(key, character)
            a, b = find(character), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {c: find(c) for c in list(parent)}
