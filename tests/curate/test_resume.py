"""Resume after `kill -9`: a real `toonlab curate` subprocess (2 workers, small shards) is killed with SIGKILL at
several moments and rerun; the union of rows equals an uninterrupted run's, nothing is written twice and nothing
is left behind. And a source that kills its worker process is recorded as failed while the rest succeed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psutil
import pytest
from outputs import error_rows, rows_without_shard
from synth import ShotSpec, write_clip
from worker_killer import KillsItsWorker

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.stages import annotate
from toonlab.curate.write import LEDGER

N_SOURCES = 8


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[str]:
    """Eight small two-shot clips and one file that fails to decode (an error line in the ledger)."""
    folder = tmp_path_factory.mktemp("resume_in")
    paths = []
    for i in range(N_SOURCES):
        clip = write_clip(
            folder / f"clip{i}.mp4",
            [ShotSpec(24 + 4 * i, 1 + i % 3, seed=100 + 2 * i), ShotSpec(30, 2, seed=101 + 2 * i)],
            size=(160, 120),
        )
        paths.append(str(clip.path))
    broken = folder / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    return [*paths[:4], str(broken), *paths[4:]]


def _command(inputs: list[str], out: Path) -> list[str]:
    return [sys.executable, "-m", "toonlab.cli", "curate", *inputs, "--out", str(out), "--workers", "2"]


def _run(inputs: list[str], out: Path) -> None:
    done = subprocess.run(
        [*_command(inputs, out), "--shard-samples", "2"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def _ledger_lines(out: Path) -> int:
    try:
        return (out / LEDGER).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _kill_when(inputs: list[str], out: Path, ready, timeout: float = 120.0) -> bool:
    """Start the CLI, SIGKILL it (the main process only, as `kill -9 PID` would) once `ready(out)` holds; return
    whether it was still running then. Its worker processes must die with it."""
    proc = subprocess.Popen(
        [*_command(inputs, out), "--shard-samples", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + timeout
    while not ready(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    running = proc.poll() is None
    children = psutil.Process(proc.pid).children(recursive=True) if running else []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"workers outlived the killed run: {alive}"
    return running


def _check_consistent(out: Path) -> None:
    """Every shard file is named by a ledger line and every ledger shard has both files; no temporary or spool
    file is left; no identifier, key or source appears twice."""
    entries = [json.loads(line) for line in (out / LEDGER).read_text().splitlines()]
    shards = [name for e in entries if e["kind"] == "shard" for name in e.get("shards") or [e["shard"]]]
    assert len(shards) == len(set(shards))
    assert sorted(p.name for p in (out / "shards").iterdir()) == sorted(f"{s}.tar" for s in shards)
    assert sorted(p.name for p in (out / "metadata").iterdir()) == sorted(f"{s}.parquet" for s in shards)
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".part"))]
    assert list((out / "_spool").iterdir()) == []
    sources = [s["source"] for e in entries if e["kind"] == "shard" for s in e["sources"]]
    sources += [e["source"] for e in entries if e["kind"] == "error"]
    assert len(sources) == len(set(sources))
    rows = rows_without_shard(out)
    assert len({r["identifier"] for r in rows}) == len(rows)
    keys = []
    for tar in (out / "shards").glob("*.tar"):
        with tarfile.open(tar) as t:
            keys += sorted({m.name.split(".", 1)[0] for m in t})
    assert sorted(keys) == sorted(f"{r['key']}_{f:06d}" for r in rows for f in r["keyframe_indices"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, sources) -> Path:
    out = tmp_path_factory.mktemp("whole")
    _run(sources, out)
    _check_consistent(out)
    assert len({r["source"] for r in rows_without_shard(out)}) == N_SOURCES
    assert len(list((out / "shards").glob("*.tar"))) >= 4  # several shards were committed during the run
    return out


def _same_as(out: Path, reference: Path) -> None:
    _check_consistent(out)
    assert rows_without_shard(out) == rows_without_shard(reference)
    assert error_rows(out) == error_rows(reference)


def test_kill_after_first_ledger_line_then_rerun(tmp_path, sources, uninterrupted):
    out = tmp_path / "out"
    assert _kill_when(sources, out, lambda o: _ledger_lines(o) >= 1)
    assert 0 < _ledger_lines(out) < _ledger_lines(uninterrupted)
    _run(sources, out)
    _same_as(out, uninterrupted)


def test_kill_twice_mid_run_then_rerun(tmp_path, sources, uninterrupted):
    out = tmp_path / "out"
    total = _ledger_lines(uninterrupted)
    assert _kill_when(sources, out, lambda o: _ledger_lines(o) >= total // 2)
    first = _ledger_lines(out)
    assert first < total
    # the second run skips what is done; kill it as soon as it has added to the ledger
    assert _kill_when(sources, out, lambda o: _ledger_lines(o) > first)
    _run(sources, out)
    _same_as(out, uninterrupted)


def test_kill_during_start_up_then_rerun(tmp_path, sources, uninterrupted):
    out = tmp_path / "out"
    assert _kill_when(sources, out, lambda o: (o / "_spool").exists())  # output opened, nothing committed yet
    _run(sources, out)
    _same_as(out, uninterrupted)


class KillsClip2(KillsItsWorker):
    victim = "clip2.mp4"


def test_source_that_kills_its_worker_is_recorded_as_failed(tmp_path, sources, monkeypatch):
    monkeypatch.setitem(annotate.REGISTRY, "killer", KillsClip2)
    stats = run_curate(sources, tmp_path, CurateConfig(annotate=("killer",)), workers=2)
    assert stats.as_dict()["sources"] == {"total": N_SOURCES + 1, "ok": N_SOURCES - 1, "failed": 2, "skipped_done": 0}
    errors = {Path(e[0]).name: e[1:] for e in error_rows(tmp_path)}
    assert errors["clip2.mp4"] == ("worker", "the worker process died while processing this source")
    assert errors["broken.mp4"][0] == "decode"
    rows = rows_without_shard(tmp_path)
    assert {Path(r["source"]).name for r in rows} == {f"clip{i}.mp4" for i in range(N_SOURCES)} - {"clip2.mp4"}
    assert all(r["killer_ok"] for r in rows)


def test_worker_whose_run_died_before_it_started_exits():
    """A pool worker forked in the moment before `kill -9` of the run starts as the reaper's child: it must exit
    rather than wait forever holding the output's lock (the PID it checks is the run's, read before the fork)."""
    import multiprocessing

    from toonlab.curate.executors.local import _die_with_parent

    fork = multiprocessing.get_context("fork")
    orphan = fork.Process(target=_die_with_parent, args=(os.getppid(),))  # any PID but the worker's real parent
    child = fork.Process(target=_die_with_parent, args=(os.getpid(),))
    for proc in (orphan, child):
        proc.start()
        proc.join(timeout=30)
    assert (orphan.exitcode, child.exitcode) == (1, 0)


def test_pool_workers_share_the_cpus_the_run_may_use(monkeypatch):
    """Threads per pool worker come from the process's CPU affinity (taskset, containers), not the machine's count."""
    from toonlab.curate.executors import local

    monkeypatch.setattr(local.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(local.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert [local.worker_threads(w) for w in (1, 2, 3, 8)] == [3, 1, 1, 1]


class _AffinityPipeline:
    """A stand-in pipeline whose every source reports the worker's PID and the CPUs it may run on."""

    def setup(self) -> None:
        pass

    def process(self, ref):  # noqa: ANN001, ANN201
        time.sleep(0.2)  # long enough that every worker of the pool gets sources
        return os.getpid(), frozenset(os.sched_getaffinity(0))


def _affinity_pipeline(threads: int) -> _AffinityPipeline:
    return _AffinityPipeline()


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to give each worker its own")
def test_pool_workers_are_pinned_to_cpus_of_their_own():
    """Each pool worker runs on its own CPUs (its threads then stay on its cores), the groups disjoint and taken
    from the run's own affinity."""
    from toonlab.curate.executors.local import LocalExecutor

    seen = dict(LocalExecutor(2).map(_affinity_pipeline, list(range(8))))
    allowed = os.sched_getaffinity(0)
    assert len(seen) == 2 and all(cpus <= allowed for cpus in seen.values())
    first, second = seen.values()
    assert len(first) == len(second) == len(allowed) // 2 and not first & second
