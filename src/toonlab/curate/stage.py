"""The stage contract and the ordered per-source pipeline: what an executor runs.

A stage has `setup()` (load what it needs once per worker), `process(item)` (pure, retry-safe) and declares
`resources` so an executor can place it. Parallelism, progress, resume and error capture belong to the executor
and to `run_curate`, never to a stage.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from toonlab.curate.records import SourceError, SourceResult, VideoRef


class StageError(RuntimeError):
    """A source failed in a named stage; `reason` is a sentence for the errors table."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason


@dataclass(frozen=True)
class Resources:
    """What one instance of a stage needs, so an executor (local pool, Ray) can place it."""

    cpus: float = 1.0
    gpus: float = 0.0
    network: bool = False  # waits on remote hosts (the download stage), so it may run beside busy CPUs


class Stage(Protocol):
    name: str
    resources: Resources

    def setup(self) -> None: ...

    def process(self, item): ...


@dataclass
class InFlight:
    """One source on its way through the stages: what the last stage made of it, and the seconds spent by stages
    that ran before a SourceResult existed (the download). Executors that run stages in separate workers (Ray)
    pass this between them."""

    ref: VideoRef
    item: VideoRef | SourceResult | SourceError
    seconds: dict[str, float] = field(default_factory=dict)


class Pipeline:
    """Runs the stages in order on one source; the first ones take a VideoRef (download, analyze), the rest a
    SourceResult. `process` runs them all; `advance` runs a slice of them (an executor may place slices with
    different resource needs on different workers) and `finish` makes the outcome."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)

    def setup(self, stages: Sequence[Stage] | None = None) -> None:
        for stage in self.stages if stages is None else stages:
            stage.setup()

    def process(self, ref: VideoRef) -> SourceResult | SourceError:
        return self.finish(self.advance(InFlight(ref, ref), self.stages))

    def advance(self, state: InFlight, stages: Sequence[Stage]) -> InFlight:
        item = state.item
        if isinstance(item, SourceError):
            return state
        stage_name = stages[0].name if stages else ""
        try:
            for stage in stages:
                stage_name = stage.name
                t = time.perf_counter()
                given = item
                item = stage.process(item)
                elapsed = time.perf_counter() - t
                if isinstance(item, VideoRef):  # before a result exists (download)
                    state.seconds[stage.name] = state.seconds.get(stage.name, 0.0) + elapsed
                elif isinstance(given, SourceResult):  # stages after analysis (annotate, clips); analysis times itself
                    item.timings[stage.name] = item.timings.get(stage.name, 0.0) + elapsed
            state.item = item
        except Exception as exc:  # StageError, or a bug / unexpected library error: keep the run going
            if isinstance(item, SourceResult):
                item.spool.unlink(missing_ok=True)
            source = state.ref.source
            if isinstance(exc, StageError):
                state.item = SourceError(source, exc.stage, exc.reason, traceback.format_exc())
            else:
                state.item = SourceError(source, stage_name, f"{type(exc).__name__}: {exc}", traceback.format_exc())
        return state

    @staticmethod
    def finish(state: InFlight) -> SourceResult | SourceError:
        item = state.item
        if isinstance(item, VideoRef):  # only when the pipeline has no stage making a result
            return SourceError(state.ref.source, "pipeline", "no stage produced a result")
        if isinstance(item, SourceResult):
            item.timings.update(state.seconds)
        return item
