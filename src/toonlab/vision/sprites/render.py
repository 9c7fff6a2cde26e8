"""Render one `Animation` to a short H.264 clip at 24 fps: drawings upscaled and composited on a background.

Drawings are aligned on a shared canvas (centred, or top-left for SuperTux, whose drawings share a hitbox
origin), scaled by the largest whole factor (nearest neighbour, so pixel art stays crisp) that fits
`fill` of the frame, or scaled down (area filter) when larger, then alpha-composited over the background:
a plain colour or a real game tile repeated across the frame and faded towards grey so the character stands
out. Wesnoth's magenta team-colour pixels are recoloured (hue turned to red, side 1's colour) as the game does.
Each output frame shows the drawing `timing.schedule` assigns to it, so the game's holds appear as repeated
frames. The clip is written to a temporary name and renamed, so a kill leaves no half-written clip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from toonlab.vision.sprites import timing
from toonlab.vision.sprites.model import Animation, Drawing

MAX_SIDE = 1024  # a source drawing larger than this is refused (untrusted files)


@dataclass(frozen=True)
class Background:
    """`colour` (RGB) for a plain background, or `tile` (an image file) repeated; `fade` mixes it with grey."""

    colour: tuple[int, int, int] = (158, 200, 230)
    tile: Path | None = None
    fade: float = 0.45

    @property
    def style(self) -> str:
        return "tiled" if self.tile else "plain"


@lru_cache(maxsize=512)
def load_rgba(path: Path) -> np.ndarray:
    """(H, W, 4) uint8 RGBA of an image file."""
    with Image.open(path) as img:
        if max(img.size) > MAX_SIDE:
            raise ValueError(f"{path} is {img.size[0]}x{img.size[1]}, larger than {MAX_SIDE}")
        return np.asarray(img.convert("RGBA")).copy()


def team_colour(rgba: np.ndarray) -> np.ndarray:
    """Turn Wesnoth's magenta team-colour range red, keeping each pixel's saturation and brightness."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgba[..., :3]), cv2.COLOR_RGB2HSV)  # (H, W, 3), hue 0..179
    mask = (hsv[..., 0] >= 155) & (hsv[..., 0] <= 172) & (hsv[..., 1] >= 60)  # the palette spans 320-335 degrees
    hsv[..., 0][mask] = 0
    out = rgba.copy()
    out[..., :3] = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


def drawing_pixels(drawing: Drawing, recolour: bool) -> np.ndarray:
    rgba = load_rgba(drawing.image)
    if recolour:
        rgba = team_colour(rgba)
    return rgba[:, ::-1] if drawing.flip else rgba


def background_frame(bg: Background, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB."""
    if bg.tile is None:
        return np.full((size, size, 3), bg.colour, np.uint8)
    tile = load_rgba(bg.tile)
    alpha = tile[..., 3:4].astype(np.float32) / 255.0
    rgb = tile[..., :3].astype(np.float32) * alpha + np.array(bg.colour, np.float32) * (1 - alpha)
    reps = (size // tile.shape[0] + 1, size // tile.shape[1] + 1, 1)
    tiled = np.tile(rgb, reps)[:size, :size]
    return (tiled * (1 - bg.fade) + 128.0 * bg.fade).astype(np.uint8)


def canvases(anim: Animation, size: int, fill: float) -> list[np.ndarray]:
    """One (size, size, 4) float32 RGBA layer per drawing, aligned and scaled alike."""
    recolour = anim.extra.get("team_colour") == "1"
    pixels = [drawing_pixels(d, recolour) for d in anim.drawings]
    h = max(p.shape[0] for p in pixels)
    w = max(p.shape[1] for p in pixels)
    longest = max(h, w)
    scale = max(1, int(fill * size // longest)) if longest <= fill * size else fill * size / longest
    out_h, out_w = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    layers = []
    for p in pixels:
        canvas = np.zeros((h, w, 4), np.uint8)
        y, x = ((h - p.shape[0]) // 2, (w - p.shape[1]) // 2) if anim.align == "center" else (0, 0)
        canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
        scaled = cv2.resize(canvas, (out_w, out_h), interpolation=interp)
        layer = np.zeros((size, size, 4), np.float32)
        top, left = (size - out_h) // 2, (size - out_w) // 2
        layer[top : top + out_h, left : left + out_w] = scaled
        layers.append(layer)
    return layers


def composite(layer: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """RGBA layer over an RGB background -> (H, W, 3) uint8."""
    alpha = layer[..., 3:4] / 255.0
    return (layer[..., :3] * alpha + bg.astype(np.float32) * (1 - alpha)).round().astype(np.uint8)


def render_clip(
    anim: Animation, dest: Path, bg: Background, size: int = 256, min_ms: float = 2000.0, fill: float = 0.7
) -> dict:
    """Write `dest` (mp4) and return what was drawn: frames, drawings per frame, holds."""
    order, durations = timing.repeat_to([d.duration_ms for d in anim.drawings], min_ms, anim.loops)
    frames = timing.schedule(durations)  # entry index per output frame
    if not frames:
        raise ValueError(f"{anim.clip_id}: no output frame (all drawings shorter than half a frame)")
    layers = canvases(anim, size, fill)
    base = background_frame(bg, size)
    rendered = [composite(layers[i], base) for i in range(len(layers))]
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.tmp")
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=timing.FPS)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "18", "preset": "veryfast"}
            for entry in frames:
                frame = av.VideoFrame.from_ndarray(rendered[order[entry]], format="rgb24")
                container.mux(stream.encode(frame))
            container.mux(stream.encode())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    runs = holds(frames)
    return {"frames": len(frames), "drawings_shown": len(runs), "mean_hold": round(sum(runs) / len(runs), 3)}


def holds(frames: list[int]) -> list[int]:
    """Run lengths of the entry index per frame: how many frames each shown drawing is held."""
    runs: list[int] = []
    for i, entry in enumerate(frames):
        if i and entry == frames[i - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    return runs
