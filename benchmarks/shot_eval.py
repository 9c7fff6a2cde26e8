"""Shot-boundary scoring on the synthetic cut set (`tests/curate/synth.py`, `standard_cut_set`).

Cut frames of every clip are scored with `boundary_f1` (one-to-one within +-tolerance), pooled over
the whole set (micro average) so short clips weigh by their number of cuts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from synth import SynthClip, boundary_f1

SAKUGA_ADAPTIVE = {"adaptive_threshold": 3.0, "min_scene_len": 18, "min_content_val": 30.0}


def pyscenedetect_cuts(path: str | Path, **detector_args: float) -> list[int]:
    """First frames of every scene after the first, by PySceneDetect's AdaptiveDetector with its
    own decode loop (Sakuga-42M settings unless overridden)."""
    from scenedetect import AdaptiveDetector, SceneManager, open_video

    manager = SceneManager()
    manager.add_detector(AdaptiveDetector(**{**SAKUGA_ADAPTIVE, **detector_args}))
    manager.detect_scenes(open_video(str(path)))
    return [start.frame_num for start, _ in manager.get_scene_list()[1:]]


def pooled_f1(
    predicted: Sequence[Sequence[int]], clips: Sequence[SynthClip], tolerance: int = 1
) -> tuple[float, float, float]:
    """(precision, recall, f1) over all clips at once: each clip's frames are shifted past the
    previous clip's (plus a gap), so no match crosses clips."""
    pred_all: list[int] = []
    true_all: list[int] = []
    offset = 0
    for cuts, clip in zip(predicted, clips, strict=True):
        pred_all += [offset + c for c in cuts]
        true_all += [offset + c for c in clip.cuts]
        offset += clip.n_frames + 10 * (tolerance + 1)
    return boundary_f1(pred_all, true_all, tolerance)


def cut_errors(predicted: Sequence[int], clip: SynthClip, tolerance: int = 1) -> dict[str, list[str]]:
    """Misses and false cuts of one clip, each described by what the shot holds at that frame."""
    missed = [c for c in clip.cuts if not any(abs(c - p) <= tolerance for p in predicted)]
    false = [p for p in predicted if not any(abs(c - p) <= tolerance for c in clip.cuts)]
    return {"missed": [_describe(clip, f) for f in missed], "false": [_describe(clip, f) for f in false]}


def _describe(clip: SynthClip, frame: int) -> str:
    for (start, end), spec in zip(clip.shot_ranges, clip.shots, strict=True):
        if start <= frame < end:
            hold = spec.hold if isinstance(spec.hold, int) else "/".join(map(str, spec.hold))
            what = ["pan"] if spec.pan else []
            near = [f for f in spec.flashes if abs(start + f - frame) <= 2]
            what += ["flash"] if near else []
            what += ["still"] if spec.hold == spec.n_frames else [f"hold {hold}"]
            return f"{clip.path.name}@{frame} (shot {start}-{end}: {', '.join(what)})"
    return f"{clip.path.name}@{frame}"


def evaluate(detect: Callable[[SynthClip], Sequence[int]], clips: Sequence[SynthClip], tolerance: int = 1) -> dict:
    """Run `detect` on every clip; pooled scores plus the per-clip errors."""
    predicted = [list(detect(clip)) for clip in clips]
    precision, recall, f1 = pooled_f1(predicted, clips, tolerance)
    errors = {clip.path.name: cut_errors(p, clip, tolerance) for p, clip in zip(predicted, clips, strict=True)}
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "errors": {k: v for k, v in errors.items() if v["missed"] or v["false"]},
    }
