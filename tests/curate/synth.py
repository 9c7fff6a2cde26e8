"""Synthetic cel-animation clips with exact ground truth, for tests and benchmarks.

A clip is a list of shots (`ShotSpec`). Each shot has its own palette, background and character, drawn
in flat colours with black line art, the way a cel looks. The character changes pose on every new
drawing and is pixel-identical while the drawing is held (on ones, twos, threes or a mixed cycle).
Shots may carry flash/impact frames (near-white frames inside the shot) and a camera pan (the whole
drawing slides a few pixels every frame).

Ground truth:
- `cuts` / `shot_ranges`: exact, from the specs.
- `keyframes`: the Sakuga-42M unique-drawing rule (`sakuga_keep`) applied to consecutive *rendered*
  frames, frame 0 of each shot kept. The drawings are contrasted enough that the same rule on the
  *decoded* file gives the same sets (`decoded_keyframes`; checked by the tests).

`boundary_f1` scores predicted cut frames against the true ones.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from toonlab.extras import require

SAKUGA_SSIM_THRESHOLD = 0.95
SAKUGA_SIZE = 64  # the rule compares 64x64 luma thumbnails
FLASH_KEEP = 0.15  # a flash frame keeps this fraction of the scene's darkness (a faint ghost on white)
LINE = (16, 16, 24)  # line-art colour


@dataclass(frozen=True)
class ShotSpec:
    """One shot of a synthetic clip.

    hold: frames each drawing is held (1 = ones, 2 = twos, 3 = threes) or a cycle such as (1, 2, 3).
    flashes: frame offsets within the shot that are flash frames; list consecutive offsets for a
        2-3 frame flash. The drawing timeline runs on underneath, so the shot resumes as it would have.
    pan: the camera pans: background and character slide a few pixels every frame.
    seed: picks palette, background layout and character; different seeds look clearly different.
    """

    n_frames: int
    hold: int | Sequence[int] = 1
    flashes: Sequence[int] = ()
    pan: bool = False
    seed: int = 0

    def drawing_index(self) -> list[int]:
        """Drawing number shown on each frame of the shot, (n_frames,)."""
        cycle = (self.hold,) if isinstance(self.hold, int) else tuple(self.hold)
        if not cycle or min(cycle) < 1:
            raise ValueError(f"hold must be >= 1, got {self.hold!r}")
        out: list[int] = []
        drawing = 0
        while len(out) < self.n_frames:
            out.extend([drawing] * cycle[drawing % len(cycle)])
            drawing += 1
        return out[: self.n_frames]


@dataclass(frozen=True)
class SynthClip:
    """A written synthetic clip and its ground truth (absolute frame indices)."""

    path: Path
    fps: Fraction
    n_frames: int
    width: int
    height: int
    cuts: tuple[int, ...]  # first frame of every shot after the first
    shot_ranges: tuple[tuple[int, int], ...]  # (start, end_exclusive) per shot
    keyframes: tuple[tuple[int, ...], ...]  # per shot, frames kept by the Sakuga rule on rendered frames
    shots: tuple[ShotSpec, ...] = ()


# ----------------------------------------------------------------------------------------------
# The reference rule


def sakuga_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (64, 64) uint8 Y, as the released detect_keyframes.py computes it
    (cv2 bilinear resize of the full frame, then YUV conversion)."""
    cv2 = require("cv2")
    small = cv2.resize(rgb, (SAKUGA_SIZE, SAKUGA_SIZE), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(small, cv2.COLOR_RGB2YUV)[:, :, 0]


def luma_ssim(prev_y: np.ndarray, cur_y: np.ndarray) -> float:
    """SSIM of two (64, 64) uint8 luma thumbnails with the Sakuga settings (7x7 window, range 255)."""
    metrics = require("skimage.metrics")
    return float(metrics.structural_similarity(prev_y, cur_y, win_size=7, data_range=255))


def sakuga_keep(prev_rgb: np.ndarray, cur_rgb: np.ndarray, threshold: float = SAKUGA_SSIM_THRESHOLD) -> bool:
    """The Sakuga-42M keyframe rule: keep `cur` when its 64x64 luma SSIM against the previous raw
    frame is below `threshold`."""
    return luma_ssim(sakuga_luma(prev_rgb), sakuga_luma(cur_rgb)) < threshold


def keyframes_of(
    frames: Iterator[np.ndarray],
    shot_ranges: Sequence[tuple[int, int]],
    threshold: float = SAKUGA_SSIM_THRESHOLD,
) -> tuple[tuple[int, ...], ...]:
    """Apply the rule to a frame stream split into `shot_ranges`; frame 0 of each shot is kept.

    The reference is always the immediately preceding raw frame (kept or not)."""
    starts = {start for start, _ in shot_ranges}
    kept: list[int] = []
    prev_y = None
    for i, rgb in enumerate(frames):
        y = sakuga_luma(rgb)
        if i in starts or luma_ssim(prev_y, y) < threshold:
            kept.append(i)
        prev_y = y
    return tuple(tuple(k for k in kept if start <= k < end) for start, end in shot_ranges)


def ssim_margins(frames: Iterator[np.ndarray], shot_ranges: Sequence[tuple[int, int]]) -> list[float]:
    """SSIM of every within-shot consecutive pair, for checking that no pair sits near the threshold."""
    starts = {start for start, _ in shot_ranges}
    out: list[float] = []
    prev_y = None
    for i, rgb in enumerate(frames):
        y = sakuga_luma(rgb)
        if i not in starts:
            out.append(luma_ssim(prev_y, y))
        prev_y = y
    return out


# ----------------------------------------------------------------------------------------------
# Drawing


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass(frozen=True)
class _Look:
    """Everything a seed decides about a shot: palette, layout and character build."""

    sky_top: tuple[int, int, int]
    sky_bottom: tuple[int, int, int]
    ground: tuple[int, int, int]
    props: tuple[tuple[int, int, int], ...]
    body: tuple[int, int, int]
    skin: tuple[int, int, int]
    limb: tuple[int, int, int]
    horizon: float  # fraction of the height
    char_x: float  # fraction of the width
    scale: float
    prop_seed: int


def _look(seed: int) -> _Look:
    rng = np.random.default_rng(seed + 7919)
    hue = (seed * 0.6180339887) % 1.0  # golden-ratio steps: consecutive seeds get far-apart hues
    dark = seed % 2 == 1  # alternate bright and dusky scenes so cuts also change brightness
    v_sky = 0.45 if dark else 0.95
    return _Look(
        sky_top=_hsv(hue, 0.55, v_sky),
        sky_bottom=_hsv(hue + 0.08, 0.25, min(1.0, v_sky + 0.05)),
        ground=_hsv(hue + 0.5, 0.6, 0.35 if dark else 0.7),
        props=tuple(_hsv(hue + rng.uniform(0.2, 0.8), 0.5, rng.uniform(0.3, 0.9)) for _ in range(4)),
        body=_hsv(hue + 0.33, 0.8, 0.85),
        skin=_hsv(0.07, 0.3, 0.98),
        limb=_hsv(hue + 0.66, 0.85, 0.55),
        horizon=float(rng.uniform(0.5, 0.72)),
        char_x=float(rng.uniform(0.3, 0.7)),
        scale=float(rng.uniform(0.9, 1.1)),
        prop_seed=int(rng.integers(1 << 30)),
    )


def _background(look: _Look, width: int, height: int) -> np.ndarray:
    """(height, width, 3) gradient sky, flat ground, a skyline of flat props with line art."""
    cv2 = require("cv2")
    t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    sky = (1 - t) * np.array(look.sky_top, np.float32) + t * np.array(look.sky_bottom, np.float32)
    img = np.repeat(sky[:, None, :], width, axis=1).round().astype(np.uint8)
    horizon = int(look.horizon * height)
    img[horizon:] = look.ground
    rng = np.random.default_rng(look.prop_seed)
    x = int(-rng.uniform(0, 30))
    unit = max(4, height // 16)
    while x < width:  # skyline: buildings/trees of random width, height and colour
        w = int(rng.uniform(2, 5) * unit)
        h = int(rng.uniform(1.5, 5) * unit)
        colour = look.props[int(rng.integers(len(look.props)))]
        if rng.uniform() < 0.5:
            cv2.rectangle(img, (x, horizon - h), (x + w, horizon), colour, -1)
            cv2.rectangle(img, (x, horizon - h), (x + w, horizon), LINE, 2)
        else:
            cv2.circle(img, (x + w // 2, horizon - h // 2), w // 2 + unit // 2, colour, -1)
            cv2.circle(img, (x + w // 2, horizon - h // 2), w // 2 + unit // 2, LINE, 2)
        x += w + int(rng.uniform(0.3, 2) * unit)
    for _ in range(max(1, width // (8 * unit))):  # ground stripes
        y = int(rng.uniform(horizon + unit, height))
        x0 = int(rng.uniform(0, width))
        cv2.line(img, (x0, y), (x0 + int(rng.uniform(2, 6) * unit), y), LINE, 2)
    return img


def _draw_character(img: np.ndarray, look: _Look, drawing: int, cx: int, height: int) -> None:
    """Draw pose number `drawing` in place. Consecutive poses differ a lot (limbs swing, body moves)."""
    cv2 = require("cv2")
    rng = np.random.default_rng((look.prop_seed, drawing))
    s = look.scale * height / 240.0
    side = 1 if drawing % 2 == 0 else -1  # alternate: every new drawing is far from the last one
    cx = int(cx + side * 22 * s + rng.uniform(-6, 6) * s)
    ground = int(look.horizon * height + 0.18 * height)
    hip_y = int(ground - 60 * s + side * 10 * s)
    torso = (int(26 * s), int(38 * s))
    chest_y = hip_y - torso[1]
    head_r = int(24 * s)
    head_c = (cx + int(side * 12 * s), chest_y - head_r - int(10 * s))

    def limb(origin: tuple[int, int], angle_deg: float, length: float) -> None:
        a = math.radians(angle_deg)
        end = (int(origin[0] + length * s * math.cos(a)), int(origin[1] + length * s * math.sin(a)))
        cv2.line(img, origin, end, LINE, max(3, int(14 * s)))
        cv2.line(img, origin, end, look.limb, max(1, int(9 * s)))
        cv2.circle(img, end, max(3, int(8 * s)), look.skin, -1)
        cv2.circle(img, end, max(3, int(8 * s)), LINE, 2)

    for leg in (-1, 1):  # legs under the torso
        limb((cx + leg * int(12 * s), hip_y), 90 + leg * 20 + side * 25 + rng.uniform(-8, 8), 58)
    cv2.ellipse(img, (cx, hip_y - torso[1] // 2), torso, side * 12, 0, 360, look.body, -1)
    cv2.ellipse(img, (cx, hip_y - torso[1] // 2), torso, side * 12, 0, 360, LINE, 3)
    for arm in (-1, 1):  # arms swing up/down on alternate drawings
        up = (arm * side) > 0
        angle = (-60 if up else 50) + (0 if arm > 0 else 180) + rng.uniform(-15, 15)
        limb((cx + arm * int(20 * s), chest_y + int(8 * s)), angle, 62)
    cv2.circle(img, head_c, head_r, look.skin, -1)
    cv2.circle(img, head_c, head_r, LINE, 3)
    eye = (head_c[0] + side * int(9 * s), head_c[1] - int(4 * s))
    cv2.circle(img, eye, max(2, int(4 * s)), LINE, -1)
    mouth = (head_c[0] + side * int(8 * s), head_c[1] + int(10 * s))
    cv2.ellipse(img, mouth, (int(8 * s), int((3 + 5 * (drawing % 3)) * s)), 0, 0, 360, LINE, -1)


def pan_step(size: tuple[int, int]) -> int:
    """Pixels the camera moves per frame in a panning shot (5 px at 320 wide)."""
    return max(2, round(size[0] / 64))


def _render_shot(spec: ShotSpec, size: tuple[int, int]) -> Iterator[np.ndarray]:
    width, height = size
    look = _look(spec.seed)
    step = pan_step(size) if spec.pan else 0
    drawings = spec.drawing_index()
    world = _background(look, width + step * max(0, spec.n_frames - 1), height)
    flashes = set(spec.flashes)
    first_frame: dict[int, int] = {}
    canvas: tuple[int, np.ndarray] | None = None
    for f, d in enumerate(drawings):
        first_frame.setdefault(d, f)
        if canvas is None or canvas[0] != d:
            img = world.copy()
            # the character rides with the camera position at which its drawing first appears
            _draw_character(img, look, d, int(look.char_x * width) + step * first_frame[d], height)
            canvas = (d, img)
        frame = np.ascontiguousarray(canvas[1][:, step * f : step * f + width])
        if f in flashes:  # near-white impact frame with a faint ghost of the scene
            frame = (255 - (255 - frame.astype(np.float32)) * FLASH_KEEP).round().astype(np.uint8)
        yield frame


def render_frames(shots: Sequence[ShotSpec], size: tuple[int, int] = (320, 240)) -> Iterator[np.ndarray]:
    """Yield every frame of the clip, (H, W, 3) uint8 RGB; `size` is (width, height)."""
    for spec in shots:
        yield from _render_shot(spec, size)


def shot_ranges_of(shots: Sequence[ShotSpec]) -> tuple[tuple[int, int], ...]:
    out, start = [], 0
    for spec in shots:
        out.append((start, start + spec.n_frames))
        start += spec.n_frames
    return tuple(out)


# ----------------------------------------------------------------------------------------------
# Encoding and verification


@lru_cache(maxsize=1)
def _encoder() -> tuple[str, dict[str, str]]:
    av = require("av")
    if "libx264" in av.codecs_available:
        # near-lossless luma so the decoded frames give the same SSIM decisions as the rendered ones
        return "libx264", {"crf": "8", "preset": "veryfast", "tune": "animation"}
    return "mpeg4", {"qscale": "1"}


def write_clip(
    path: str | Path,
    shots: Sequence[ShotSpec],
    fps: Fraction = Fraction(24),
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
) -> SynthClip:
    """Render `shots`, encode them to `path` (yuv420p) and return the clip with its ground truth.

    `codec` falls back to high-quality mpeg4 when libx264 is not available."""
    av = require("av")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ranges = shot_ranges_of(shots)
    name, options = _encoder() if codec == "libx264" else (codec, {"qscale": "1"} if codec == "mpeg4" else {})
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(name, rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if name == "mpeg4":
            stream.bit_rate = 20_000_000

        def encoded(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
            for rgb in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    container.mux(packet)
                yield rgb

        # one pass, one frame in memory: encode each rendered frame, then apply the rule to it
        keyframes = keyframes_of(encoded(render_frames(shots, size)), ranges)
        for packet in stream.encode():
            container.mux(packet)
    return SynthClip(
        path=path,
        fps=Fraction(fps),
        n_frames=ranges[-1][1] if ranges else 0,
        width=width,
        height=height,
        cuts=tuple(start for start, _ in ranges[1:]),
        shot_ranges=ranges,
        keyframes=keyframes,
        shots=tuple(shots),
    )


def decode_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode every frame of `path` with PyAV as (H, W, 3) uint8 RGB."""
    av = require("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")


def decoded_keyframes(clip: SynthClip) -> tuple[tuple[int, ...], ...]:
    """The Sakuga rule applied to the decoded file, split by the true shot ranges."""
    return keyframes_of(decode_frames(clip.path), clip.shot_ranges)


# ----------------------------------------------------------------------------------------------
# Evaluation set and scoring

_STANDARD_SET: tuple[tuple[ShotSpec, ...], ...] = (
    # ones / twos / threes with plain hard cuts
    (ShotSpec(48, 1, seed=1), ShotSpec(60, 2, seed=2), ShotSpec(72, 3, seed=3)),
    # mixed timing, a flash inside a shot, a held still shot
    (ShotSpec(96, (1, 2, 3), seed=4), ShotSpec(40, 2, flashes=(20,), seed=5), ShotSpec(30, 30, seed=6)),
    # fast pans (on twos and on ones) next to a cut
    (ShotSpec(90, 2, pan=True, seed=7), ShotSpec(36, 1, seed=8), ShotSpec(72, 3, pan=True, seed=9)),
    # short shots near the 18-frame minimum
    (ShotSpec(18, 2, seed=10), ShotSpec(20, 1, seed=11), ShotSpec(18, 3, seed=12), ShotSpec(24, 2, seed=13)),
    # impact frames: a 1-frame and a 3-frame flash on ones, a 2-frame flash on twos
    (ShotSpec(64, 1, flashes=(15, 40, 41, 42), seed=14), ShotSpec(72, 2, flashes=(30, 31), seed=15)),
    # long shots on threes and held stills, six shots
    (
        ShotSpec(120, 3, seed=16),
        ShotSpec(24, 24, seed=17),
        ShotSpec(60, (2, 3), seed=18),
        ShotSpec(19, 1, seed=19),
        ShotSpec(48, 2, flashes=(24,), seed=20),
        ShotSpec(36, 3, pan=True, seed=21),
    ),
    # two shots only, both on twos with the same timing: the cut is the only thing that changes
    (ShotSpec(60, 2, seed=22), ShotSpec(60, 2, seed=23)),
    # a pan with a flash in it, then a still
    (ShotSpec(80, 2, pan=True, flashes=(50,), seed=24), ShotSpec(40, 40, seed=25), ShotSpec(30, 1, seed=26)),
)


def standard_specs() -> tuple[tuple[ShotSpec, ...], ...]:
    """The shot lists behind `standard_cut_set` (8 clips, 2-6 shots each, 18-120 frame shots)."""
    return _STANDARD_SET


def standard_cut_set(directory: str | Path, size: tuple[int, int] = (320, 240)) -> list[SynthClip]:
    """Write the standard evaluation clips (24 fps) into `directory` and return them with ground truth."""
    directory = Path(directory)
    return [write_clip(directory / f"synth_{i:02d}.mp4", shots, size=size) for i, shots in enumerate(_STANDARD_SET)]


def boundary_f1(
    predicted_cuts: Sequence[int], true_cuts: Sequence[int], tolerance: int = 1
) -> tuple[float, float, float]:
    """(precision, recall, f1) of predicted cut frames; a prediction matches a true cut within
    +-`tolerance` frames, one to one (greedy by distance). Empty vs empty scores 1.0."""
    pred, true = sorted(set(predicted_cuts)), sorted(set(true_cuts))
    if not pred and not true:
        return 1.0, 1.0, 1.0
    pairs = sorted(
        (abs(p - t), i, j) for i, p in enumerate(pred) for j, t in enumerate(true) if abs(p - t) <= tolerance
    )
    used_p: set[int] = set()
    used_t: set[int] = set()
    for _, i, j in pairs:
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
    matched = len(used_p)
    precision = matched / len(pred) if pred else 0.0
    recall = matched / len(true) if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    return precision, recall, f1
