"""`run_curate`: sources -> executor -> the single writer, and the factory that builds the pipeline from a config.

Parallelism, progress, resume and error capture belong to the executor and to `run_curate`, never to a stage
(the contract is in `stage.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from toonlab.curate.config import CurateConfig
from toonlab.curate.records import SourceError, SourceResult
from toonlab.curate.sources import collect_sources
from toonlab.curate.stage import Pipeline, Stage
from toonlab.curate.stages.analyze import AnalyzeStage, ImageEncoder
from toonlab.curate.stages.annotate import REGISTRY, AnnotateStage
from toonlab.curate.stages.clips import ClipStage
from toonlab.curate.stages.download import FetchStage
from toonlab.curate.write import DatasetWriter, write_stats


def build_pipeline(config: CurateConfig, spool_dir: Path, decoder_threads: int = 0) -> Pipeline:
    """The factory: a config becomes stage objects once, here."""
    images = None
    if config.image_format != "none":
        images = ImageEncoder(config.image_format, config.image_quality, config.image_max_side)
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


EXECUTORS = ("local", "ray")


def make_executor(name: str, workers: int, ray_address: str | None = None):
    if name == "local":
        from toonlab.curate.executors.local import LocalExecutor

        return LocalExecutor(workers)
    if name == "ray":
        from toonlab.curate.executors.ray import RayExecutor

        return RayExecutor(workers, address=ray_address)
    raise RunError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")


def run_curate(
    inputs: Sequence[str],
    out: Path,
    config: CurateConfig | None = None,
    workers: int = 1,
    on_progress: Callable[[dict], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> dict:
    """Curate `inputs` into `out`; sources already in the ledger are skipped. Returns the run's stats.

    `executor` is "local" (this process or a process pool) or "ray" (Ray Data; a local Ray instance unless
    `ray_address` names a cluster). Both run the same stages and hand results to the single writer here."""
    config = config or CurateConfig()
    if workers < 1:
        raise RunError(f"--workers must be >= 1, got {workers}")
    if executor not in EXECUTORS:
        raise RunError(f"--executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        writer = DatasetWriter(out, config.shard_max_bytes, config.shard_max_samples)
    except OSError as exc:
        raise RunError(f"cannot write to output directory {out}: {exc.strerror or exc}") from exc
    if config.download_cache is None:
        config = replace(config, download_cache=str((out / "_downloads").resolve()))
    sources = collect_sources(inputs)
    refs = [ref for ref in sources.refs if ref.source not in writer.ledger.done]
    skipped = len(sources.refs) - len(refs)
    if on_total:
        on_total(len(refs))
    stats = {
        "sources": {"total": len(sources.refs), "ok": 0, "failed": 0, "skipped_done": skipped},
        "shots": 0,
        "frames": 0,
        "keyframes": 0,
        "stage_seconds": {},
        "failed_by_stage": {},
        "dropped": dict(sorted(sources.dropped.items())),  # input rows and released scenes left out, by reason
        "config": config.as_dict(),
        "workers": workers,
        "executor": executor,
    }
    start = time.perf_counter()
    runner = make_executor(executor, workers, ray_address)
    for outcome in runner.map(config, refs, writer.spool_dir):
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
            for reason, count in outcome.dropped.items():
                stats["dropped"][reason] = stats["dropped"].get(reason, 0) + count
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
