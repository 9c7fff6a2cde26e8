"""Ray Data executor (`--executor ray-data`): the same pipeline stages, placed by their declared resources on a Ray
cluster. `--executor ray` runs the same rules on plain Ray actors (`executors.ray_actors`), with less overhead.

`RayExecutor(workers).map(build, refs)` yields `SourceResult`/`SourceError` to the single writer in
the driver, exactly like `LocalExecutor`; ordering follows completion, not input.

Mapping (the executor maps, it does not fork the logic):
* the driver builds the pipeline once (`build(1)`: one thread per declared CPU) and cuts it into groups of
  consecutive stages with the same `resources` (download: no CPU, network; analyze + annotate + clips: 1 CPU each; a
  GPU annotator would get its own group). Each group is one `Dataset.map` over a fixed actor pool of `workers`
  actors with that group's `num_cpus`/`num_gpus`, so `setup()` runs once per actor, as in a local worker process. A
  group gets no more actors than its stages' `max_instances(refs)` (the download stage: the remote hosts' connection
  slots), and is skipped when that is 0 (no remote source);
* rows carry a pickled `InFlight` (the source, what the stages made of it so far, download seconds) from group
  to group and back to the driver; never decoded frames. A source that failed in a stage is an error record that
  later groups pass through;
* one source per block, two tasks in flight per actor (the next source waits at the actor, hiding the
  scheduling round trip). An actor that dies (a decoder segfault, the OOM killer) loses the source it was working
  on and the one queued behind it: Ray restarts the actor (`max_restarts=-1`) but does not retry the tasks
  (`max_task_retries=0`: a source that kills its worker would kill the next one too), the blocks are dropped
  (`DataContext.max_errored_blocks=-1`) and the run goes on. The lost sources are then run again with one task in
  flight per actor, so each is alone in its worker: the innocent ones come back, and a source that kills its
  worker again is recorded as failed in stage "worker" (the local executor's rule).

Files: workers write each source's encoded keyframes to a spool file under `OUT/_spool` and downloads to the
cache (`OUT/_downloads` by default); the writer in the driver reads the spool files. On a multi-node cluster OUT
(and the download cache) must therefore be on storage every node mounts at the same path (NFS, Lustre, CephFS,
EFS, ...). Shipping spooled bytes through the object store was the alternative; shared storage keeps the driver's
memory flat and the object store free of image bytes.

PyAV's Python log callback can deadlock in Ray workers, so every actor switches PyAV logging off.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Iterator, Sequence

from toonlab.curate.records import SourceError, SourceResult, VideoRef
from toonlab.curate.stage import InFlight, PipelineFactory
from toonlab.extras import require
from toonlab.io import pin_process

_LOST = "the Ray worker died while processing this source (decoder crash or out of memory?)"
INIT_ARGS = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}


def init_local(ray, cpus: int) -> None:
    """Start a private local Ray instance of `cpus` CPUs whose workers run at nice 0 (a normally started process).

    Ray starts its workers at nice 15 by default (`worker_niceness`), so on a machine with no spare core the
    driver's writer and Ray's own daemons preempt the actors doing the work; measured (`scale_bench.py`, 20
    copies, 2 vCPUs, three alternating rounds) at nice 0 the plain-actor executor with 2 workers was faster in
    3 of 3 pairs (42.5-48.7 s against 45.6-53.5 s, local 38.4-43.6 s). A cluster (`address`) keeps its own
    setting: it is the raylet's (`RAY_worker_niceness`)."""
    ray.init(num_cpus=cpus, _system_config={"worker_niceness": 0}, **INIT_ARGS)


def stage_groups(stages: Sequence) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive stages with equal resources."""
    groups: list[tuple[int, int]] = []
    for i, stage in enumerate(stages):
        if groups and stages[groups[-1][0]].resources == stage.resources:
            groups[-1] = (groups[-1][0], i + 1)
        else:
            groups.append((i, i + 1))
    return groups


class StageGroup:
    """One actor of a stage group: sets up its slice of the pipeline once, then advances states (`advance`, as a
    plain Ray actor) or Ray Data rows of pickled states (`__call__`, as a Ray Data callable class)."""

    def __init__(self, pipeline, start: int, end: int, cpus: frozenset[int] | None = None) -> None:
        if cpus:  # this actor's own CPUs on a one-node instance (`RayActorExecutor`)
            pin_process(cpus)
        try:
            import av.logging

            av.logging.set_level(None)  # no Python log callback in Ray workers (it can deadlock)
        except ImportError:
            pass
        self.pipeline = pipeline
        self.stages = pipeline.stages[start:end]
        pipeline.setup(self.stages)

    def advance(self, state: InFlight) -> InFlight:
        return self.pipeline.advance(state, self.stages)

    def __call__(self, row: dict) -> dict:
        state = self.advance(pickle.loads(row["state"]))
        return {"index": row["index"], "state": pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)}


class RayExecutor:
    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        self.workers = workers
        self.address = address

    def map(self, build: PipelineFactory, refs: Sequence[VideoRef]) -> Iterator[SourceResult | SourceError]:
        if not refs:
            return
        ray = require("ray")
        require("ray.data")

        started_here = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, **INIT_ARGS)
            else:  # a private local instance sized to the worker count
                init_local(ray, self.workers)
            started_here = True
        try:
            yield from self._run(ray, build(1), refs)  # one decoder thread per declared CPU
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, pipeline, refs):
        context = ray.data.DataContext.get_current()
        settings = {
            "max_errored_blocks": -1,  # a dead worker's block is dropped, handled below, and the run goes on
            "enable_progress_bars": False,  # the CLI shows per-source progress from the results stream
            "print_on_execution_start": False,
        }
        saved = {name: getattr(context, name) for name in settings}
        for name, value in settings.items():
            setattr(context, name, value)
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        try:
            yield from self._rounds(ray, pipeline, refs)
        finally:
            for name, value in saved.items():
                setattr(context, name, value)

    def _rounds(self, ray, pipeline, refs):
        indexed = list(enumerate(refs))
        lost = yield from self._round(ray, pipeline, indexed, in_flight=2)
        if lost:  # each again alone in its worker: only a source that kills its worker again fails
            lost = yield from self._round(ray, pipeline, lost, in_flight=1)
        for _, ref in lost:
            yield SourceError(ref.source, "worker", _LOST)

    def _group_size(self, stages, refs) -> int:
        """Actors for a stage group: `workers`, fewer where a stage caps its instances (0: nothing to do)."""
        caps = [s.max_instances(refs) for s in stages if hasattr(s, "max_instances")]
        return min([self.workers, *caps])

    def _round(self, ray, pipeline, indexed, in_flight: int):
        """Run `indexed` (index, ref) pairs through the stage groups; yield outcomes; return the lost pairs."""
        rows = [
            {"index": i, "state": pickle.dumps(InFlight(ref, ref), protocol=pickle.HIGHEST_PROTOCOL)}
            for i, ref in indexed
        ]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))  # one source per block
        refs = [ref for _, ref in indexed]
        for start, end in stage_groups(pipeline.stages):
            resources = pipeline.stages[start].resources
            actors = self._group_size(pipeline.stages[start:end], refs)
            if actors == 0:  # nothing for this group to do (e.g. no remote source to download)
                continue
            with warnings.catch_warnings():  # the retry settings have no named parameter yet (ray 2.60)
                warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
                dataset = dataset.map(
                    StageGroup,
                    fn_constructor_args=(pipeline, start, end),
                    compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=in_flight),
                    num_cpus=resources.cpus,
                    num_gpus=resources.gpus or None,
                    max_restarts=-1,
                    max_task_retries=0,
                )
        returned: set[int] = set()
        for row in dataset.iter_rows():
            returned.add(row["index"])
            yield pipeline.finish(pickle.loads(row["state"]))
        return [(i, ref) for i, ref in indexed if i not in returned]
