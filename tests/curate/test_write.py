"""The writer under torn writes and misuse: a ledger cut mid-line (power loss, full disk) loses no committed shard
and no later record is glued onto the torn line; a second run into an output in use is refused."""

from __future__ import annotations

import json
import os

import pytest
from outputs import rows_without_shard
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.run import RunError, run_curate
from toonlab.curate.write import LEDGER, DatasetWriter, Ledger

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
