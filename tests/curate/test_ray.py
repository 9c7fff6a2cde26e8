"""The Ray executors (plain actors, Ray Data) on a local Ray with 2 CPUs give the local executor's output for the
same input: the same rows (all columns but `shard`), the same error rows, the same stats keys; a source that kills
its Ray worker is a failed source and the run goes on."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import deque

import pytest
from http_media import MediaServer, Route
from outputs import error_rows, rows_without_shard
from synth import ShotSpec, write_clip
from worker_killer import KillsItsWorker

from toonlab.curate.config import CurateConfig
from toonlab.curate.executors.ray import stage_groups
from toonlab.curate.run import build_pipeline, run_curate
from toonlab.curate.stage import Resources
from toonlab.curate.stages import annotate

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
RAY_EXECUTORS = ("ray", "ray-data")


def test_stages_grouped_by_resources(tmp_path):
    stages = build_pipeline(CurateConfig(clips="copy"), tmp_path).stages
    assert [s.name for s in stages] == ["download", "analyze", "clips"]
    assert stage_groups(stages) == [(0, 1), (1, 3)]  # network-bound download apart, CPU stages together

    class GpuStage:
        name = "gpu"
        resources = Resources(cpus=1.0, gpus=0.25)

    assert stage_groups([*stages, GpuStage(), stages[-1]]) == [(0, 1), (1, 3), (3, 4), (4, 5)]


@pytest.fixture(scope="module")
def all_runs(tmp_path_factory, two_clips):
    """The same inputs through the local executor and each Ray executor: {name: (out, stats)}, the inputs."""
    folder = tmp_path_factory.mktemp("ray_in")
    crash = write_clip(folder / "crash.mp4", [ShotSpec(30, 2, seed=51)], size=(160, 120))
    broken = folder / "broken.mkv"
    broken.write_bytes(b"\x1a\x45\xdf\xa3" + b"\x00" * 4000)
    served = write_clip(folder / "served.mp4", [ShotSpec(20, 1, seed=52), ShotSpec(24, 2, seed=53)], size=(160, 120))
    body = served.path.read_bytes()
    server = MediaServer().__enter__()  # a remote source too, so the download stage runs on its own actors
    url = server.add(f"/data/{hashlib.md5(body).hexdigest()}.mp4", Route(body))
    inputs = [str(c.path) for c in two_clips] + [str(crash.path), str(broken), url]
    registry = {**annotate.REGISTRY, "killer": KillsItsWorker}
    by_value = [sys.modules[__name__], sys.modules[KillsItsWorker.__module__]]  # Ray workers cannot import tests
    for module in by_value:
        ray.cloudpickle.register_pickle_by_value(module)
    saved = dict(annotate.REGISTRY)
    annotate.REGISTRY.update(registry)
    runs = {}
    try:
        config = CurateConfig(annotate=("killer",), shard_max_samples=2)
        for executor in ("local", *RAY_EXECUTORS):
            out = tmp_path_factory.mktemp(executor)
            runs[executor] = out, run_curate(inputs, out, config, workers=2, executor=executor)
            assert not ray.is_initialized()  # the executor shut down the Ray instance it started
    finally:
        server.__exit__()
        annotate.REGISTRY.clear()
        annotate.REGISTRY.update(saved)
        for module in by_value:
            ray.cloudpickle.unregister_pickle_by_value(module)
    return runs, inputs


@pytest.fixture(params=RAY_EXECUTORS)
def both_runs(request, all_runs):
    runs, inputs = all_runs
    return runs["local"], runs[request.param], inputs


def test_same_rows_as_local(both_runs, two_clips):
    (out_local, _), (out_ray, _), _ = both_runs
    rows = rows_without_shard(out_ray)
    assert rows == rows_without_shard(out_local)
    assert len(rows) == sum(len(c.shot_ranges) for c in two_clips) + 2 and all(r["killer_ok"] for r in rows)
    assert sum(r["url_link"].startswith("http://127.0.0.1") for r in rows) == 2
    with_keys = {p.name for p in (out_ray / "shards").glob("*.tar")}
    assert len(with_keys) >= 2  # several shards from one streamed run


def test_same_errors_and_the_crash_is_a_failed_source(both_runs):
    (out_local, _), (out_ray, _), inputs = both_runs
    assert error_rows(out_ray, ("source", "stage")) == error_rows(out_local, ("source", "stage"))
    stages = dict(error_rows(out_ray, ("source", "stage")))
    assert stages[inputs[2]] == "worker" and stages[inputs[3]] == "decode"


def test_stats_merged_with_the_same_keys(both_runs):
    (out_local, local), (out_ray, remote), _ = both_runs
    saved = json.loads((out_ray / "_stats.json").read_text())
    assert set(saved) == set(json.loads((out_local / "_stats.json").read_text()))
    assert saved["executor"] == remote.executor in RAY_EXECUTORS and local.executor == "local"
    for key in ("sources", "shots", "frames", "keyframes", "failed_by_stage"):
        assert getattr(remote, key) == getattr(local, key), key
    assert {"download", "decode", "analyze", "encode"} <= set(saved["stage_seconds"])


def test_actor_scheduler_finishes_sources_first_and_holds_back_upstream():
    """The driver's scheduler fills the last group first, keeps each actor at `in_flight` tasks, and starts no
    new source upstream while the next group already has a full round waiting."""
    from toonlab.curate.executors.ray_actors import RayActorExecutor, _Pool

    class Actor:
        def __init__(self, name):
            self.advance = type("Method", (), {"remote": lambda _, state: (name, state)})()

    download = _Pool([Actor("d0")], waiting=deque((i, f"s{i}") for i in range(5)))
    analyze = _Pool([Actor("a0"), Actor("a1")], waiting=deque((i, f"s{i}") for i in range(10, 13)))
    pending: dict = {}
    RayActorExecutor._submit([download, analyze], pending, in_flight=2)
    assert analyze.load == [2, 1] and not analyze.waiting  # all three started, spread over the actors
    assert download.load == [2] and len(download.waiting) == 3  # the next group has room: downloads go on
    assert sorted(p for p, _, _ in pending.values()) == [0, 0, 1, 1, 1]

    analyze.waiting.extend((i, f"s{i}") for i in range(20, 25))  # one starts, a full round (2 x 2) stays queued
    download.load = [0]
    RayActorExecutor._submit([download, analyze], pending, in_flight=2)
    assert analyze.load == [2, 2] and len(analyze.waiting) == 4
    assert download.load == [0] and len(download.waiting) == 3  # held back


def test_private_instance_runs_workers_at_nice_0():
    """Ray's default worker niceness (15) lets the driver and Ray's daemons preempt the actors doing the work."""
    from toonlab.curate.executors.ray import init_local

    @ray.remote
    class Niceness:
        def get(self) -> int:
            return os.nice(0)

    init_local(ray, 1)
    try:
        assert ray.get(Niceness.remote().get.remote()) == 0
    finally:
        ray.shutdown()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to give each actor its own")
def test_one_node_actors_run_on_cpus_of_their_own(tmp_path):
    """On a one-node instance on this machine each plain actor of a pool gets its own CPUs, as local pool workers
    do, every thread of its process pinned; on a cluster (`address`) actors float."""
    from toonlab.curate.executors.ray import StageGroup, init_local
    from toonlab.curate.executors.ray_actors import RayActorExecutor
    from toonlab.io import cpu_groups

    class Probe(StageGroup):
        def affinities(self) -> set[frozenset[int]]:
            return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}

    pipeline = build_pipeline(CurateConfig(), tmp_path)
    init_local(ray, 2)
    try:
        groups = RayActorExecutor(2)._cpu_groups(ray, 2)
        assert groups == cpu_groups(2) and groups[0] != groups[1]
        assert RayActorExecutor(2, address="auto")._cpu_groups(ray, 2) is None
        actor = ray.remote(Probe).remote(pipeline, 1, 2, groups[1])
        assert ray.get(actor.affinities.remote()) == {groups[1]}
    finally:
        ray.shutdown()
