"""Per-annotator cost in ms per shot on the real media, beside the curate analysis cost per shot.

    python benchmarks/annotate_bench.py [--media .cache/media/clips] [--repeats 1] [--max-shots N]

One analysis pass (the curate pipeline's first stage, with keyframe JPEGs) over every clip gives the shots and the
analysis cost (wall time of the stage per shot). The keyframe images of every shot are then decoded once (their cost
is its own row) and each annotator is timed over all shots, after its setup (model loading is reported apart).
aesthetic and tags have no released model on this machine: aesthetic runs a CLIP vision model with random weights
in two sizes (a tiny test config and the ViT-B/32 architecture, so the second row costs what a real ViT-B/32 would;
LAION's predictor uses ViT-L/14, about 4x the compute of B/32 at 224 px), tags a tiny test tagger (a real WD14
SwinV2/ConvNeXt costs far more). The table says so. Timings never gate anything.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "curate" / "annotate")]

from conftest import TINY_CLIP, build_clip, build_tagger  # noqa: E402  (the tests' tiny-model recipes)

from toonlab.curate.config import CurateConfig  # noqa: E402
from toonlab.curate.records import SourceResult  # noqa: E402
from toonlab.curate.run import build_pipeline  # noqa: E402
from toonlab.curate.sources import iter_sources  # noqa: E402
from toonlab.curate.stages.annotate import REGISTRY, ShotView  # noqa: E402


def analyse(media: Path, spool: Path) -> tuple[list[SourceResult], float]:
    """Run the analysis stage over every clip: (results, total seconds of the stage)."""
    config = CurateConfig(image_format="jpg")
    pipeline = build_pipeline(config, spool)
    pipeline.setup()
    results, seconds = [], 0.0
    for ref in iter_sources([str(media)]):
        start = time.perf_counter()
        outcome = pipeline.process(ref)
        seconds += time.perf_counter() - start
        if isinstance(outcome, SourceResult):
            results.append(outcome)
    return results, seconds


def time_annotator(make: Callable[[], object], views: list[ShotView], repeats: int) -> tuple[float, float]:
    """(setup seconds, best-of-repeats seconds over all views)."""
    start = time.perf_counter()
    annotator = make()
    annotator.setup()
    setup = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for view in views:
            annotator.annotate(view)
        best = min(best, time.perf_counter() - start)
    return setup, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", type=Path, default=ROOT / ".cache" / "media" / "clips")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-shots", type=int, default=0, help="time annotators on at most this many shots")
    args = parser.parse_args()
    console = Console(width=132)  # one line per row, also when piped
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "spool").mkdir()
        results, analysis_s = analyse(args.media, tmp / "spool")
        views = [ShotView(r, i) for r in results for i in range(len(r.shots))]
        n_shots = len(views)
        start = time.perf_counter()
        keyframes = sum(len(v.images()) for v in views)
        decode_s = time.perf_counter() - start
        timed = views[: args.max_shots] if args.max_shots else views
        analysis_ms = 1000 * analysis_s / n_shots
        clip_tiny = build_clip(tmp / "clip-tiny", **TINY_CLIP)
        clip_b32 = build_clip(tmp / "clip-b32")  # CLIPVisionConfig defaults: ViT-B/32, 224 px, projection 512
        tagger = build_tagger(tmp / "tagger", size=448)
        rows = [
            ("text", "RapidOCR PP-OCRv4 det+rec (packaged)", lambda: REGISTRY["text"]()),
            ("motion", "OpenCV DIS + RANSAC", lambda: REGISTRY["motion"]()),
            ("quality", "OpenCV measurements", lambda: REGISTRY["quality"]()),
            (
                "aesthetic",
                "tiny random CLIP (test model) + LAION MLP",
                lambda: REGISTRY["aesthetic"](clip_dir=str(clip_tiny[0]), mlp_path=str(clip_tiny[1])),
            ),
            (
                "aesthetic",
                "ViT-B/32 CLIP, random weights + LAION MLP",
                lambda: REGISTRY["aesthetic"](clip_dir=str(clip_b32[0]), mlp_path=str(clip_b32[1])),
            ),
            ("tags", "tiny WD14-layout test tagger (448 px input)", lambda: REGISTRY["tags"](model_dir=str(tagger))),
        ]
        table = Table(
            title=f"annotator cost: {len(results)} clips, {n_shots} shots, {keyframes} keyframes "
            f"({len(timed)} shots timed); analysis {analysis_ms:.1f} ms/shot"
        )
        for column in ("annotator", "model", "setup s", "ms / shot", "x analysis"):
            table.add_column(column, justify="left" if column in ("annotator", "model") else "right")
        table.add_row("(analysis)", "curate decode + shots + keyframes + JPEG", "", f"{analysis_ms:.1f}", "1.00")
        decode_ms = 1000 * decode_s / n_shots
        table.add_row(
            "(keyframe decode)", "JPEG -> RGB, shared by all", "", f"{decode_ms:.1f}", f"{decode_ms / analysis_ms:.2f}"
        )
        for name, model, make in rows:
            setup, seconds = time_annotator(make, timed, args.repeats)
            ms = 1000 * seconds / len(timed)
            table.add_row(name, model, f"{setup:.2f}", f"{ms:.1f}", f"{ms / analysis_ms:.2f}")
        for result in results:
            result.spool.unlink(missing_ok=True)
    console.print(table)


if __name__ == "__main__":
    main()
