"""Drawings with durations in ms -> which drawing each frame of a 24 fps clip shows.

A drawing that starts at t0 ms and ends at t1 ms covers output frames round(t0 * fps / 1000) up to (not
including) round(t1 * fps / 1000). Rounding the cumulative times (not each duration) keeps the clip's length
exact and spreads the rounding error, so 125 ms drawings at 24 fps alternate 3 and 3 frames and a run of
83/84 ms drawings lands on twos. A drawing shorter than half a frame (Wesnoth's 1 ms hold frames) covers no
frame, as in the game at this frame rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

FPS = 24


def schedule(durations_ms: Sequence[float], fps: float = FPS) -> list[int]:
    """Per output frame, the index of the drawing it shows. Durations must be >= 0."""
    if any(d < 0 for d in durations_ms):
        raise ValueError(f"negative drawing duration in {list(durations_ms)}")
    frames: list[int] = []
    t = 0.0
    start = 0
    for index, duration in enumerate(durations_ms):
        t += duration
        end = round(t * fps / 1000.0)
        frames.extend([index] * (end - start))
        start = max(start, end)
    return frames


def repeat_to(durations_ms: Sequence[float], min_ms: float, loops: bool) -> tuple[list[int], list[float]]:
    """Lengthen one play of an animation to at least `min_ms`: repeat it (`loops`), else hold its last drawing.

    Returns (drawing index per entry, duration per entry)."""
    total = sum(durations_ms)
    if total <= 0:
        raise ValueError("an animation with no duration cannot be timed")
    indices = list(range(len(durations_ms)))
    times = list(durations_ms)
    if loops:
        plays = max(1, math.ceil(min_ms / total))
        return indices * plays, times * plays
    if total < min_ms:
        times[-1] += min_ms - total
    return indices, times
