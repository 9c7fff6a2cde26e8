"""`run_curate`: sources -> executor -> the single writer, and the factory that builds the pipeline from a config.

Parallelism, progress, resume and error capture belong to the executor and to `run_curate`, never to a stage
(the contract is in `stage.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

from toonlab.curate.card import write_card
from toonlab.curate.choices import ExecutorName, choose
from toonlab.curate.config import CurateConfig
from toonlab.curate.records import RECORD_VERSION, SourceError, SourceResult
from toonlab.curate.sources import collect_sources
from toonlab.curate.stage import Pipeline, Stage
from toonlab.curate.stages.analyze import AnalyzeStage
from toonlab.curate.stages.analyze.images import make_image_encoder
from toonlab.curate.stages.annotate import REGISTRY, AnnotateStage
from toonlab.curate.stages.clips import ClipStage
from toonlab.curate.stages.download import FetchStage
from toonlab.curate.write import DatasetWriter, OutputInUse, write_stats


@dataclass
class SourceCounts:
    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped_done: int = 0  # in the ledger already (committed or failed by an earlier run)


@dataclass
class RunStats:
    """What one run did; `OUT/_stats.json` is `as_dict()`. Seconds are per stage, summed over sources."""

    sources: SourceCounts
    config: dict
    workers: int
    executor: str
    shots: int = 0
    frames: int = 0
    keyframes: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    failed_by_stage: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> things left out (input rows, scenes)
    input_warnings: list[str] = field(default_factory=list)  # inputs skipped unread (FIFOs, loops, permissions)
    seconds: float = 0.0  # wall time of the run
    fps: float = 0.0  # frames per wall second
    analysis_fps_per_worker: float = 0.0  # frames per second of decode + analysis

    def failed(self, error: SourceError) -> None:
        self.sources.failed += 1
        self.failed_by_stage[error.stage] = self.failed_by_stage.get(error.stage, 0) + 1

    def committed(self, result: SourceResult, rows: list[dict]) -> None:
        self.sources.ok += 1
        self.shots += len(rows)
        self.frames += result.probe.frame_count
        self.keyframes += sum(r["key_frame_number"] for r in rows)
        for name, seconds in result.timings.items():
            self.stage_seconds[name] = self.stage_seconds.get(name, 0.0) + seconds
        for reason, count in result.dropped.items():
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def finish(self, wall: float) -> None:
        self.seconds = wall
        self.fps = self.frames / wall if wall > 0 else 0.0
        analysis = self.stage_seconds.get("decode", 0.0) + self.stage_seconds.get("analyze", 0.0)
        self.analysis_fps_per_worker = self.frames / analysis if analysis > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def build_pipeline(config: CurateConfig, spool_dir: Path, decoder_threads: int = 0) -> Pipeline:
    """The factory: a config becomes stage objects once, here. `decoder_threads`: the CPU threads a worker may
    give its decoder (0: FFmpeg chooses)."""
    images = make_image_encoder(config.image_format, config.image_quality, config.image_max_side, config.kernels)
    cache = Path(config.download_cache) if config.download_cache else Path(spool_dir).parent / "_downloads"
    stages: list[Stage] = [
        FetchStage(config.download, cache),
        AnalyzeStage(
            config.ssim_threshold,
            config.min_scene_len,
            config.shot_detector,
            images,
            spool_dir,
            decoder_threads,
            shots=config.shots,
            kernels=config.kernels,
            max_frame_pixels=config.max_frame_pixels,
        ),
    ]
    if config.annotate:
        options = config.annotator_options
        stages.append(AnnotateStage([REGISTRY[name](**options.get(name, {})) for name in config.annotate]))
    if config.clips != "none":
        stages.append(ClipStage(config.clips))
    return Pipeline(stages)


class RunError(RuntimeError):
    """The run itself cannot proceed (bad arguments, unwritable output)."""


def make_executor(name: ExecutorName, workers: int, ray_address: str | None = None):
    if name == ExecutorName.ray:
        from toonlab.curate.executors.ray_actors import RayActorExecutor

        return RayActorExecutor(workers, address=ray_address)
    if name == ExecutorName.ray_data:
        from toonlab.curate.executors.ray import RayExecutor

        return RayExecutor(workers, address=ray_address)
    from toonlab.curate.executors.local import LocalExecutor

    return LocalExecutor(workers)


def _take(writer: DatasetWriter, outcome: SourceResult | SourceError, stats: RunStats) -> SourceResult | SourceError:
    """Hand one outcome to the writer: a result's rows, or an error record (also for a source whose bytes an
    earlier source already has, which is the outcome returned then)."""
    if isinstance(outcome, SourceResult):
        first = writer.ledger.hashes.get(outcome.probe.sha256)
        if first is not None and first != outcome.ref.source:
            outcome.spool.unlink(missing_ok=True)
            outcome = SourceError(outcome.ref.source, "dedup", f"same bytes as an earlier source: {first}")
    if isinstance(outcome, SourceError):
        writer.fail(outcome)
        stats.failed(outcome)
    else:
        rows = writer.add(outcome)
        writer.ledger.hashes[outcome.probe.sha256] = outcome.ref.source
        stats.committed(outcome, rows)
    return outcome


def run_curate(
    inputs: Sequence[str],
    out: Path,
    config: CurateConfig | None = None,
    workers: int = 1,
    on_progress: Callable[[SourceResult | SourceError, RunStats], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> RunStats:
    """Curate `inputs` into `out`; sources already in the ledger are skipped. Returns the run's stats.

    `executor` is "local" (this process or a process pool), "ray" (plain Ray actors) or "ray-data" (Ray Data);
    the Ray ones start a local Ray instance unless `ray_address` names a cluster. All run the same stages and hand
    results to the single writer here."""
    config = config or CurateConfig()
    if workers < 1:
        raise RunError(f"--workers must be >= 1, got {workers}")
    try:
        executor = choose(ExecutorName, executor, "executor")
    except ValueError as exc:
        raise RunError(str(exc)) from None
    out = Path(out)
    sources = collect_sources(inputs)  # bad inputs fail before OUT is touched
    runner = make_executor(executor, workers, ray_address)
    try:
        out.mkdir(parents=True, exist_ok=True)
        writer = DatasetWriter(out, config.shard_max_bytes, config.shard_max_samples)
    except OutputInUse as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out}: {exc.strerror or exc}") from exc
    if writer.ledger.versions - {RECORD_VERSION}:
        writer.release()
        old = sorted(writer.ledger.versions - {RECORD_VERSION})
        raise RunError(f"{out} holds shards of record version {old}, this writes {RECORD_VERSION}: use a new --out")
    if config.download_cache is None:
        config = replace(config, download_cache=str((out / "_downloads").resolve()))
    refs = [ref for ref in sources.refs if ref.source not in writer.ledger.done]
    skipped = len(sources.refs) - len(refs)
    if on_total:
        on_total(len(refs))
    stats = RunStats(
        sources=SourceCounts(total=len(sources.refs), skipped_done=skipped),
        dropped=dict(sorted(sources.dropped.items())),  # input rows and released scenes left out, by reason
        input_warnings=sources.warnings,  # inputs that could not be read (FIFOs, symlink loops, permissions)
        config=config.as_dict(),
        workers=workers,
        executor=str(executor),
    )
    start = time.perf_counter()
    build = partial(build_pipeline, config, Path(writer.spool_dir).resolve())  # picklable: workers build their own
    try:
        for outcome in runner.map(build, refs):
            outcome = _take(writer, outcome, stats)
            if on_progress:
                on_progress(outcome, stats)
        writer.close()
    finally:  # after an error too: the lock goes with this call, not with the process
        writer.release()
    stats.finish(time.perf_counter() - start)
    write_stats(out, stats.as_dict())
    write_card(out)
    return stats
