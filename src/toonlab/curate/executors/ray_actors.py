"""Ray executor (`--executor ray`): the Ray Data executor's placement and failure rules on plain Ray actors,
scheduled by the driver itself.

`RayActorExecutor(workers)` is a drop-in for `RayExecutor` (`--executor ray-data`): the same stage groups (one
actor pool per group of consecutive stages with equal `resources`, sized by `workers` and the stages'
`max_instances`), the same `InFlight` states from group to group and back to the driver's writer, two tasks in
flight per actor, actors restarted when they die without retrying their tasks, and the lost sources run again
alone in their worker (see `executors.ray`). What it leaves out is Ray Data's streaming executor: no executor
thread polling in the driver beside the writer, no statistics or autoscaling actors, and the driver sleeps in
`ray.wait` until a task ends. Backpressure is the driver's: a group starts no new source while the next group
already has a full round of sources waiting (so downloads never run far ahead of analysis).
Measured (`benchmarks/scale_bench.py`, 2 vCPUs): with 1 / 2 workers 1.6% / 3.8% slower than the local executor
on 217,560 frames where the Ray Data executor is 16.9% / 14.0% slower in the same run, and 4.7% / 13.6% against
36.5% / 35.7% on 36,260 frames; first result after about 3 s instead of 7-10 s. A second 217,560-frame run gave
15.9% / 15.8% (CPU per frame up as much) with Ray's workers at nice 15; with them at nice 0 (`ray.init_local`),
best of two alternating 217,560-frame rounds: 4.9% / 8.5% slower warm, 11.9% end to end with `ray.init`.
On a one-node instance on this machine each actor of a pool is pinned to CPUs of its own, as the local executor
pins its workers (`_cpu_groups`); with both pinned: 7.7% / 1.9% and 7.5% / -6.4% slower warm on 54,390 frames
(best of 2, best of 3 rounds), 21.4% / 0.0% on 145,040 (the machine's load swung 16% between rounds).

Files: as for `executors.ray` (spool and download cache under OUT, shared storage on a multi-node cluster).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from toonlab.curate.executors.ray import RayExecutor, StageGroup, stage_groups
from toonlab.curate.stage import InFlight
from toonlab.io import cpu_groups


@dataclass
class _Pool:
    """A stage group's actors, the sources waiting for them and the tasks each actor has in flight."""

    actors: list
    waiting: deque = field(default_factory=deque)  # (index, InFlight)
    load: list[int] = field(default_factory=list)  # tasks in flight per actor

    def __post_init__(self) -> None:
        self.load = [0] * len(self.actors)

    def idlest(self) -> int:
        return min(range(len(self.actors)), key=self.load.__getitem__)


class RayActorExecutor(RayExecutor):
    def _run(self, ray, pipeline, refs):  # no Ray Data context to set
        yield from self._rounds(ray, pipeline, refs)

    def _round(self, ray, pipeline, indexed, in_flight: int):
        """Run `indexed` (index, ref) pairs through the stage groups; yield outcomes; return the lost pairs."""
        pools = self._pools(ray, pipeline, [ref for _, ref in indexed])
        try:
            lost = yield from self._schedule(ray, pipeline, pools, indexed, in_flight)
        finally:
            for pool in pools:
                for actor in pool.actors:
                    ray.kill(actor)
        return lost

    def _pools(self, ray, pipeline, refs) -> list[_Pool]:
        """One pool of actors per stage group that has work (a group capped at 0 actors is left out)."""
        shared = ray.put(pipeline)  # pickled once for every actor
        remote = ray.remote(StageGroup)
        pools = []
        for start, end in stage_groups(pipeline.stages):
            size = self._group_size(pipeline.stages[start:end], refs)
            if size == 0:  # nothing for this group to do (e.g. no remote source to download)
                continue
            resources = pipeline.stages[start].resources
            options = remote.options(
                num_cpus=resources.cpus, num_gpus=resources.gpus or 0, max_restarts=-1, max_task_retries=0
            )
            groups = self._cpu_groups(ray, size)
            pools.append(
                _Pool([options.remote(shared, start, end, groups[k] if groups else None) for k in range(size)])
            )
        return pools

    def _cpu_groups(self, ray, actors: int) -> list[frozenset[int]] | None:
        """CPUs of its own for each of a pool's `actors` (`io.cpu_groups`, from this driver's affinity), as the
        local executor pins its workers; only on a one-node instance on this machine (no `address`), where
        those CPUs are the node's. A cluster's actors float: Ray does not say which cores a node gives them."""
        nodes = ray.nodes()
        if self.address or len(nodes) != 1 or nodes[0]["NodeManagerAddress"] != ray.util.get_node_ip_address():
            return None
        return cpu_groups(actors)

    def _schedule(self, ray, pipeline, pools: list[_Pool], indexed, in_flight: int):
        """Move every source through the pools in order, keeping each actor at `in_flight` tasks; yield each
        finished outcome; return the (index, ref) pairs whose actor died under them."""
        refs = dict(indexed)
        pools[0].waiting.extend((i, InFlight(ref, ref)) for i, ref in indexed)
        pending: dict = {}  # ObjectRef -> (pool number, actor number, source index)
        lost = []
        while True:
            self._submit(pools, pending, in_flight)
            if not pending:
                return lost
            (done,), _ = ray.wait(list(pending), num_returns=1)
            p, a, index = pending.pop(done)
            pools[p].load[a] -= 1
            try:
                state = ray.get(done)
            except ray.exceptions.RayActorError:  # the actor died (or is restarting) under this task
                lost.append((index, refs[index]))
                continue
            if p + 1 < len(pools):
                pools[p + 1].waiting.append((index, state))
            else:
                yield pipeline.finish(state)

    @staticmethod
    def _submit(pools: list[_Pool], pending: dict, in_flight: int) -> None:
        """Start waiting sources on actors with room, the last group first (finish sources before starting new
        ones); a group waits while the next one has a full round of sources queued."""
        for p in reversed(range(len(pools))):
            pool = pools[p]
            downstream = pools[p + 1] if p + 1 < len(pools) else None
            while pool.waiting:
                if downstream is not None and len(downstream.waiting) >= in_flight * len(downstream.actors):
                    break
                a = pool.idlest()
                if pool.load[a] >= in_flight:
                    break
                index, state = pool.waiting.popleft()
                pending[pool.actors[a].advance.remote(state)] = (p, a, index)
                pool.load[a] += 1
