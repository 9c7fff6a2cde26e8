"""The shared toolbelt: atomic writes leave the old file or the new one, retry backs off and gives up, safe names."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from toonlab.io import (
    GaveUp,
    atomic_path,
    atomic_write,
    cpu_groups,
    cpu_share,
    lower_this_thread,
    replace_dir,
    retry,
    safe_name,
)


def test_atomic_write_replaces_and_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "stats.json"
    atomic_write(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["stats.json"]
    atomic_write(target, b"new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_replace_dir_swaps_whole_folders(tmp_path):
    final, built = tmp_path / "columns", tmp_path / ".columns.tmp"
    (final / "a").mkdir(parents=True)
    (built / "b").mkdir(parents=True)
    replace_dir(final, built)
    assert [p.name for p in final.iterdir()] == ["b"] and sorted(p.name for p in tmp_path.iterdir()) == ["columns"]
    replace_dir(final, tmp_path / "never-built")  # nothing built: the folder goes
    assert not final.exists()


def test_replace_dir_never_removes_a_folder_it_did_not_create(tmp_path):
    """A folder that happens to carry the name an older swap used for the old copy is left alone."""
    final, built = tmp_path / "columns", tmp_path / "built"
    (final / "a").mkdir(parents=True)
    (built / "b").mkdir(parents=True)
    user = tmp_path / ".columns.old"
    user.mkdir()
    (user / "mine.txt").write_text("keep")
    replace_dir(final, built)
    assert (user / "mine.txt").read_text() == "keep" and [p.name for p in final.iterdir()] == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".columns.old", "columns"]  # the moved-aside copy went


class Flaky(Exception):
    def __init__(self, retryable: bool, wait: float = 0.0) -> None:
        self.retryable, self.wait = retryable, wait


def _calls(failures: list[Exception]):
    def call():
        if failures:
            raise failures.pop(0)
        return "done"

    return call


def test_retry_backs_off_honours_hints_and_counts_attempts():
    slept: list[float] = []
    args = {"retryable": lambda e: e.retryable, "backoff": 1.0, "backoff_max": 10.0, "sleep": slept.append}
    call = _calls([Flaky(True), Flaky(True, wait=7.0), Flaky(True)])
    assert retry(call, 3, wait_hint=lambda e: e.wait, **args) == ("done", 4)
    assert 1.0 <= slept[0] <= 1.25 and slept[1] == 7.0 and 4.0 <= slept[2] <= 5.0  # 1, hint 7 > 2, 4 (+jitter)
    with pytest.raises(GaveUp) as stop:
        retry(_calls([Flaky(True), Flaky(False)]), 5, **args)
    assert stop.value.attempts == 2 and not stop.value.error.retryable  # a non-retryable failure stops at once
    with pytest.raises(GaveUp) as stop:
        retry(_calls([Flaky(True)] * 3), 2, **args)
    assert stop.value.attempts == 3


@pytest.mark.parametrize("text", ["../../etc/passwd", "/abs/key", "..", ".", "", "a" * 300, "ok_key-1", "é/x"])
def test_safe_name_is_one_bounded_path_component(text):
    name = safe_name(text)
    assert (
        name
        and name not in (".", "..")
        and len(name) <= 80
        and set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    )
    assert (name == text) == (text == "ok_key-1")
    assert safe_name("a/b") != safe_name("a_b")  # a changed text gets its hash: no two texts share a name


def test_cpu_share_divides_the_affinity_not_the_machine(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert [cpu_share(n) for n in (1, 2, 3, 8, 0)] == [3, 1, 1, 1, 3]


def test_cpu_groups_split_the_affinity_into_disjoint_sets(monkeypatch):
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 0, 2, 6, 5})
    assert cpu_groups(2) == [{0, 2}, {4, 5}]  # in order, cpu_share(2) each; CPU 6 is left to no group
    assert cpu_groups(5) == [{0}, {2}, {4}, {5}, {6}]
    assert cpu_groups(1) is None  # a lone consumer keeps every CPU
    assert cpu_groups(6) is None  # more consumers than CPUs: none gets a CPU of its own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_lower_this_thread_changes_only_the_calling_thread():
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    here = nice()
    seen: list[tuple[bool, int, int]] = []

    def worker() -> None:
        before = nice()
        seen.append((lower_this_thread(3), before, nice()))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    changed, before, after = seen[0]
    assert before == here  # a new thread starts at its creator's value
    assert changed and after == min(19, here + 3)
    assert nice() == here
    assert lower_this_thread(0) is False and nice() == here
