"""The Ray Data executor on a local Ray with 2 CPUs gives the local executor's output for the same input: the same
rows (all columns but `shard`), the same error rows, the same stats keys; a source that kills its Ray worker is a
failed source and the run goes on."""

from __future__ import annotations

import hashlib
import json
import sys

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


def test_stages_grouped_by_resources(tmp_path):
    stages = build_pipeline(CurateConfig(clips="copy"), tmp_path).stages
    assert [s.name for s in stages] == ["download", "analyze", "clips"]
    assert stage_groups(stages) == [(0, 1), (1, 3)]  # network-bound download apart, CPU stages together

    class GpuStage:
        name = "gpu"
        resources = Resources(cpus=1.0, gpus=0.25)

    assert stage_groups([*stages, GpuStage(), stages[-1]]) == [(0, 1), (1, 3), (3, 4), (4, 5)]


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory, two_clips):
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
    out_local, out_ray = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("ray")
    saved = dict(annotate.REGISTRY)
    annotate.REGISTRY.update(registry)
    try:
        config = CurateConfig(annotate=("killer",), shard_max_samples=2)
        local = run_curate(inputs, out_local, config, workers=2)
        remote = run_curate(inputs, out_ray, config, workers=2, executor="ray")
    finally:
        server.__exit__()
        annotate.REGISTRY.clear()
        annotate.REGISTRY.update(saved)
        for module in by_value:
            ray.cloudpickle.unregister_pickle_by_value(module)
    assert not ray.is_initialized()  # the executor shut down the Ray instance it started
    return (out_local, local), (out_ray, remote), inputs


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
    assert saved["executor"] == "ray" and local["executor"] == "local"
    for key in ("sources", "shots", "frames", "keyframes", "failed_by_stage"):
        assert remote[key] == local[key], key
    assert {"download", "decode", "analyze", "encode"} <= set(saved["stage_seconds"])
