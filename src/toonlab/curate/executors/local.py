"""Local executor: the pipeline in this process (1 worker) or in a process pool, results streamed back.

At most `2 * workers` sources are in flight, so memory does not grow with the corpus. A worker process that
dies (a decoder crash, the OOM killer) turns the sources it may have held into error records and the pool is
started again for the rest. Pool workers die with the main process (Linux parent-death signal), so a `kill -9`
of the run leaves no worker behind to write into the output after a rerun has cleaned it. Each pool worker
runs on CPUs of its own (`io.cpu_groups`), so its threads stay on its cores.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.sharedctypes import Synchronized

from toonlab.curate.records import SourceError, SourceResult, VideoRef
from toonlab.curate.stage import PipelineFactory
from toonlab.io import cpu_groups, cpu_share, pin_process

_PIPELINE = None


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this worker when its parent dies (prctl PR_SET_PDEATHSIG); no-op elsewhere. `parent`
    is the PID the pool was made in, read there: a worker forked just before a `kill -9` of the run starts with
    the reaper as its parent already, and must not wait forever on a call queue whose writer it holds itself
    (with the output's lock descriptor)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _take_cpus(slots: Synchronized, groups: list[frozenset[int]]) -> None:
    """Pin this pool worker to the next free group of CPUs (`cpu_groups`). Its threads (decoder, analysis,
    encoder) then share its own cores and hand the GIL over there, instead of migrating across every core and
    slowing the other workers: 2 workers on 2 vCPUs took 6-14% less wall time pinned (`scale_bench.py`)."""
    with slots.get_lock():
        k = slots.value
        slots.value += 1
    pin_process(groups[k % len(groups)])


def _init_worker(
    build: PipelineFactory,
    threads: int,
    parent: int | None = None,
    slots: Synchronized | None = None,
    groups: list[frozenset[int]] | None = None,
) -> None:
    if parent is not None:  # a pool worker
        _die_with_parent(parent)
    if groups:
        _take_cpus(slots, groups)

    global _PIPELINE
    _PIPELINE = build(threads)
    _PIPELINE.setup()


def _process(ref: VideoRef) -> SourceResult | SourceError:
    return _PIPELINE.process(ref)


def worker_threads(workers: int) -> int:
    """Threads each pool worker may use: the process's CPUs (`cpu_share`) shared among the workers."""
    return cpu_share(workers)


class LocalExecutor:
    """Runs the pipeline `build` makes (a picklable factory: each pool worker builds its own)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def map(self, build: PipelineFactory, refs: Sequence[VideoRef]) -> Iterator[SourceResult | SourceError]:
        if self.workers == 1:
            _init_worker(build, 0)
            for ref in refs:
                yield _process(ref)
            return
        threads = worker_threads(self.workers)
        pending = deque(refs)
        suspects: list[VideoRef] = []
        while pending:  # a dead worker breaks the pool: start a new one for what is left
            yield from self._pool_map((build, threads), pending, self.workers, suspects)
        for ref in suspects:  # in flight when a worker died: retry each alone to find the one that kills it
            alone = deque([ref])
            dead: list[VideoRef] = []
            yield from self._pool_map((build, threads), alone, 1, dead)
            for source in dead:
                yield SourceError(source.source, "worker", "the worker process died while processing this source")

    @staticmethod
    def _pool_map(init: tuple, pending: deque, workers: int, suspects: list):
        """Run until `pending` is empty or the pool breaks; sources in flight at a break go to `suspects`."""
        context = multiprocessing.get_context()
        groups = cpu_groups(workers)  # None for a lone retry worker
        slots = context.Value("i", 0) if groups else None  # the next group's index, shared by the pool's workers
        initargs = (*init, os.getpid(), slots, groups)
        with ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=initargs) as pool:
            in_flight: dict = {}
            try:
                while pending or in_flight:
                    while pending and len(in_flight) < 2 * workers:
                        in_flight[pool.submit(_process, pending[0])] = pending[0]  # submit raises once broken:
                        pending.popleft()  # only then is the source taken off the queue
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        del in_flight[future]
                        yield result
            except BrokenProcessPool:
                suspects.extend(in_flight.values())
