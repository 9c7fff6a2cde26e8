"""The stage contract, the ordered per-source pipeline built from a config, and `run_curate`.

A stage has `setup()` (load what it needs once per worker), `process(item)` (pure, retry-safe) and declares
`resources` so an executor can place it. Parallelism, progress, resume and error capture belong to the executor
and to `run_curate`, never to a stage.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from toonlab.curate.analyze import AnalyzeStage, ImageEncoder, Resources, StageError
from toonlab.curate.annotate import REGISTRY, AnnotateStage
from toonlab.curate.clips import ClipStage
from toonlab.curate.config import CurateConfig
from toonlab.curate.records import SourceError, SourceResult, VideoRef
from toonlab.curate.sources import iter_sources
from toonlab.curate.write import DatasetWriter, write_stats


class Stage(Protocol):
    name: str
    resources: Resources

    def setup(self) -> None: ...

    def process(self, item): ...


class Pipeline:
    """Runs the stages in order on one source; the first takes a VideoRef, the rest a SourceResult."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def setup(self) -> None:
        for stage in self.stages:
            stage.setup()

    def process(self, ref: VideoRef) -> SourceResult | SourceError:
        item = ref
        stage_name = self.stages[0].name
        try:
            for stage in self.stages:
                stage_name = stage.name
                item = stage.process(item)
            return item
        except Exception as exc:  # StageError, or a bug / unexpected library error: keep the run going
            if isinstance(item, SourceResult):
                item.spool.unlink(missing_ok=True)
            if isinstance(exc, StageError):
                return SourceError(ref.source, exc.stage, exc.reason, traceback.format_exc())
            return SourceError(ref.source, stage_name, f"{type(exc).__name__}: {exc}", traceback.format_exc())


def build_pipeline(config: CurateConfig, spool_dir: Path, decoder_threads: int = 0) -> Pipeline:
    """The factory: a config becomes stage objects once, here."""
    images = None
    if config.image_format != "none":
        images = ImageEncoder(config.image_format, config.image_quality, config.image_max_side)
    stages: list[Stage] = [
        AnalyzeStage(
            config.ssim_threshold, config.min_scene_len, config.shot_detector, images, spool_dir, decoder_threads
        )
    ]
    if config.annotate:
        options = config.annotator_options
        stages.append(AnnotateStage([REGISTRY[name](**options.get(name, {})) for name in config.annotate]))
    if config.clips != "none":
        stages.append(ClipStage(config.clips))
    return Pipeline(stages)


class RunError(RuntimeError):
    """The run itself cannot proceed (bad arguments, unwritable output)."""


def run_curate(
    inputs: Sequence[str],
    out: Path,
    config: CurateConfig | None = None,
    workers: int = 1,
    on_progress: Callable[[dict], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict:
    """Curate `inputs` into `out`; sources already in the ledger are skipped. Returns the run's stats."""
    from toonlab.curate.executors.local import LocalExecutor

    config = config or CurateConfig()
    if workers < 1:
        raise RunError(f"--workers must be >= 1, got {workers}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        writer = DatasetWriter(out, config.shard_max_bytes, config.shard_max_samples)
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out}: {exc.strerror or exc}") from exc
    refs = [ref for ref in iter_sources(inputs) if ref.source not in writer.ledger.done]
    skipped = sum(1 for _ in iter_sources(inputs)) - len(refs)
    if on_total:
        on_total(len(refs))
    stats = {
        "sources": {"total": len(refs) + skipped, "ok": 0, "failed": 0, "skipped_done": skipped},
        "shots": 0,
        "frames": 0,
        "keyframes": 0,
        "stage_seconds": {},
        "failed_by_stage": {},
        "config": config.as_dict(),
        "workers": workers,
    }
    start = time.perf_counter()
    executor = LocalExecutor(workers)
    for outcome in executor.map(config, refs, writer.spool_dir):
        if isinstance(outcome, SourceResult):
            first = writer.ledger.hashes.get(outcome.probe.sha256)
            if first is not None and first != outcome.ref.source:
                outcome.spool.unlink(missing_ok=True)
                outcome = SourceError(outcome.ref.source, "dedup", f"same bytes as an earlier source: {first}")
        if isinstance(outcome, SourceError):
            writer.fail(outcome)
            stats["sources"]["failed"] += 1
            by_stage = stats["failed_by_stage"]
            by_stage[outcome.stage] = by_stage.get(outcome.stage, 0) + 1
        else:
            rows = writer.add(outcome)
            writer.ledger.hashes[outcome.probe.sha256] = outcome.ref.source
            stats["sources"]["ok"] += 1
            stats["shots"] += len(rows)
            stats["frames"] += outcome.probe.frame_count
            stats["keyframes"] += sum(r["key_frame_number"] for r in rows)
            for name, seconds in outcome.timings.items():
                stats["stage_seconds"][name] = stats["stage_seconds"].get(name, 0.0) + seconds
        if on_progress:
            on_progress({"outcome": outcome, "stats": stats})
    writer.close()
    wall = time.perf_counter() - start
    stats["seconds"] = wall
    stats["fps"] = stats["frames"] / wall if wall > 0 else 0.0
    analysis = stats["stage_seconds"].get("decode", 0.0) + stats["stage_seconds"].get("analyze", 0.0)
    stats["analysis_fps_per_worker"] = stats["frames"] / analysis if analysis > 0 else 0.0
    write_stats(out, stats)
    return stats
