"""The writer under torn writes and misuse: a ledger cut mid-line (power loss, full disk) loses no committed shard
and no later record is glued onto the torn line; a second run into an output in use is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from outputs import rows_without_shard
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.run import RunError, run_curate
from toonlab.curate.write import LEDGER, DatasetWriter, Ledger, OutputInUse, lock_output

runner = CliRunner()


def _tear_last_line(out, keep: int = 25) -> bytes:
    """Cut the ledger's last line after `keep` bytes, as a power loss mid-write would; returns the lost tail."""
    data = (out / LEDGER).read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    (out / LEDGER).write_bytes(data[: start + keep])
    return data[start + keep :]


def test_torn_ledger_line_keeps_its_shard_and_later_records(tmp_path, two_clips):
    first, second = (str(c.path) for c in two_clips)
    out = tmp_path / "out"
    run_curate([first], out)
    rows_first = rows_without_shard(out)
    assert rows_first
    _tear_last_line(out)  # the only shard line is now unreadable
    stats = run_curate([second], out)  # a later run into the same OUT, other inputs
    assert stats.sources.ok == 1
    torn, *records = (out / LEDGER).read_text().splitlines()  # the torn line, then whole records on lines of their own
    assert [json.loads(line).get("recovered", False) for line in records] == [True, False]
    rows = rows_without_shard(out)
    assert {r["source"] for r in rows} == {first, second}
    assert [r for r in rows if r["source"] == first] == rows_first
    again = run_curate([first, second], out)  # both are known finished: nothing redone, nothing twice
    assert again.sources.skipped_done == 2 and rows_without_shard(out) == rows


def test_record_glued_onto_a_torn_line_is_recovered(tmp_path):
    shard = {"kind": "shard", "v": 1, "shard": "00000", "sources": [{"source": "a", "sha256": "h", "shots": 1}]}
    error = {"kind": "error", "source": "b", "stage": "decode", "reason": "bad", "detail": ""}
    whole = json.dumps(shard)
    (tmp_path / LEDGER).write_text(whole + "\n" + whole[:30] + json.dumps(error) + "\n" + whole[:12])
    ledger = Ledger.open(tmp_path / LEDGER)
    assert ledger.done == {"a", "b"} and ledger.shards == {"00000"}
    assert ledger.torn == 2
    ledger.append({"kind": "error", "source": "c", "stage": "decode", "reason": "bad", "detail": ""})
    reopened = Ledger.open(tmp_path / LEDGER)
    assert reopened.done == {"a", "b", "c"}


def test_second_run_into_a_busy_output_is_refused_and_deletes_nothing(tmp_path, two_clips):
    out = tmp_path / "out"
    writer = DatasetWriter(out, 1 << 20, 10)  # a first run, holding OUT, with a shard in progress
    in_progress = out / "shards" / "00000.tar.tmp"
    in_progress.write_bytes(b"samples being written")
    result = runner.invoke(app, ["curate", str(two_clips[0].path), "--out", str(out)])
    assert result.exit_code == 2
    assert f"in use by another toonlab curate run (PID {os.getpid()}" in " ".join(result.output.split())
    assert in_progress.read_bytes() == b"samples being written"
    with pytest.raises(RunError, match=f"PID {os.getpid()}"):
        run_curate([str(two_clips[0].path)], out)
    writer.close()  # the first run ends: OUT is free again
    assert run_curate([str(two_clips[0].path)], out).sources.ok == 1


_HOLD = """
import fcntl, sys, time
handle = open(sys.argv[1], "a+")
fcntl.flock(handle, fcntl.LOCK_EX)
handle.seek(0); handle.truncate(); handle.write(sys.argv[2] + "\\n"); handle.flush()
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def _hold_lock(out, named_pid: str, seconds: float) -> subprocess.Popen:
    """A process holding OUT's lock for `seconds`, with `named_pid` written in the lock file."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(out / "_lock"), named_pid, str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_of_a_killed_run_held_by_its_dying_workers_is_waited_for(tmp_path):
    """The run named in the lock is dead; a process it forked still holds the lock for a moment: the next run
    waits for it instead of refusing."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = _hold_lock(tmp_path, dead.stdout.strip(), 1.0)
    handle = lock_output(tmp_path, dead_holder_wait=60.0)  # raised OutputInUse before
    assert (tmp_path / "_lock").read_text() == f"{os.getpid()}\n"
    handle.close()
    assert holder.wait(timeout=30) == 0


def test_lock_of_a_live_run_is_refused_without_waiting(tmp_path):
    holder = _hold_lock(tmp_path, "PID", 3.0)
    (tmp_path / "_lock").write_text(f"{holder.pid}\n")
    with pytest.raises(OutputInUse, match=f"PID {holder.pid}"):  # waiting would take the lock once it exits
        lock_output(tmp_path, dead_holder_wait=60.0)
    assert holder.poll() is None  # refused while the holder still runs
    holder.kill()
    holder.wait(timeout=10)


def test_failed_fsync_of_a_shard_commits_nothing_and_a_rerun_recovers(tmp_path, two_clips, monkeypatch):
    """Shard tars are fsynced on a background thread: its error must reach the commit before any rename."""
    import errno

    import toonlab.curate.write as write

    def broken_fsync(path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    out = tmp_path / "out"
    monkeypatch.setattr(write, "_fsync", broken_fsync)
    with pytest.raises(OSError, match="Input/output error"):
        run_curate([str(two_clips[0].path)], out)
    assert not list((out / "shards").glob("*.tar")) and not list((out / "metadata").glob("*.parquet"))
    assert Ledger.open(out / LEDGER).shards == set()
    monkeypatch.undo()
    assert run_curate([str(two_clips[0].path)], out).sources.ok == 1  # the half-made files are cleaned, not kept
    assert [p.name for p in (out / "shards").iterdir()] == ["00000.tar"]


def test_a_refused_output_is_let_go_at_once(tmp_path, two_clips):
    """A run refused after taking the lock (shards of an older record version) releases it before it raises, even
    while its traceback (and so its frame and writer) is kept, as an interactive session keeps the last one."""
    out = tmp_path / "out"
    run_curate([str(two_clips[0].path)], out)
    ledger = out / LEDGER
    ledger.write_text(ledger.read_text().replace('"v":2', '"v":1'))
    with pytest.raises(RunError, match="record version") as refused:
        run_curate([str(two_clips[1].path)], out)
    lock_output(out, dead_holder_wait=0).close()  # free again: taking it does not wait or fail
    assert refused.traceback  # kept alive until here
