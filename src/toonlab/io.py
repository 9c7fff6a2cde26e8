"""The shared toolbelt: atomic writes (a file or a folder), retry with backoff, file names from untrusted text,
the CPUs a process may use, and a thread's scheduling priority."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; on success it is fsynced and renamed over `path`, on an
    exception removed. Readers see the old file or the new one, never a torn one, whatever kills the writer."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # one per process: concurrent writers never share
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path | str, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    return Path(path)


def scratch_dir(beside: Path, label: str) -> Path:
    """A fresh, uniquely named empty folder `.NAME.<random>.<label>` next to `beside` (same file system, so a
    rename moves it into place): a run removes only what it created, never a folder that was there before."""
    beside.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{beside.name}.", suffix=f".{label}", dir=beside.parent))


def replace_dir(final: Path, built: Path) -> None:
    """Swap the fully written folder `built` in at `final`: the old one, if any, is renamed aside to a fresh
    unique name, `built` renamed in, then the old one removed. Readers see the old folder or the new one, never a
    mix (between the two renames there is briefly none); a kill in between leaves the old one whole under its
    `.NAME.<random>.old` name. A `built` that does not exist removes `final`."""
    old = scratch_dir(final, "old") if final.exists() else None
    if old is not None:
        os.replace(final, old)  # onto the empty folder just made for it
    if built.exists():
        os.replace(built, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class GaveUp(Exception):
    """`retry` stopped: `error` is the last failure, `attempts` how many calls were made."""

    def __init__(self, error: Exception, attempts: int) -> None:
        super().__init__(str(error))
        self.error, self.attempts = error, attempts


def retry(
    call: Callable[[], T],
    retries: int,
    retryable: Callable[[Exception], bool],
    backoff: float = 1.0,
    backoff_max: float = 60.0,
    wait_hint: Callable[[Exception], float] = lambda exc: 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """`call()` until it returns; returns (its result, attempts made).

    A failure `retryable` accepts is retried up to `retries` times, after `backoff * 2**(n - 1)` seconds (capped
    at `backoff_max`, plus up to 25% jitter so clients do not retry in step) or after the failure's own hint
    (`wait_hint`, e.g. an HTTP Retry-After) when that is longer. Any other failure, or the last one, raises
    `GaveUp` carrying it."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(), attempt
        except Exception as exc:
            if not retryable(exc) or attempt > retries:
                raise GaveUp(exc, attempt) from exc
            pause = min(backoff_max, backoff * 2 ** (attempt - 1)) * (1 + 0.25 * random.random())
            sleep(max(pause, min(wait_hint(exc), backoff_max)))


def safe_name(text: str, max_len: int = 80) -> str:
    """A single path component made from untrusted text (a metadata key, a shard name): only `[A-Za-z0-9_-]`,
    at most `max_len` characters, never empty, `.` or `..`. Text that had to change gets 8 hex digits of its
    hash, so two different texts never share a name."""
    cleaned = _UNSAFE.sub("_", text)[:max_len].strip("_")
    if cleaned == text and cleaned:
        return cleaned
    return f"{cleaned[: max_len - 9] or 'x'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def cpu_share(parts: int = 1) -> int:
    """Threads for each of `parts` equal consumers (pool workers, DDP ranks on one node): the CPUs this process may
    run on (its affinity, which `taskset`, a container or a batch scheduler may narrow below the machine's count)
    divided among them, at least 1."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, parts))


def cpu_groups(parts: int) -> list[frozenset[int]] | None:
    """Disjoint sets of `cpu_share(parts)` CPUs each, one per consumer, taken in order from this process's
    affinity (CPUs that do not divide evenly stay with no group); None for fewer than 2 parts or fewer CPUs than
    parts, where no consumer can have a CPU of its own."""
    cpus = sorted(os.sched_getaffinity(0))
    if parts < 2 or len(cpus) < parts:
        return None
    size = len(cpus) // parts
    return [frozenset(cpus[k * size : (k + 1) * size]) for k in range(parts)]


def pin_process(cpus: frozenset[int]) -> bool:
    """Restrict every thread this process has now to `cpus`; threads started later inherit it from their
    creator. Linux sets affinity per thread, so a process that already runs threads (a Ray actor's) needs each
    one set. False where it cannot be done (no `/proc`, a sandbox that refuses it): the process runs unpinned."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return False
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cpus)
        except ProcessLookupError:  # a thread that ended meanwhile
            continue
        except OSError:
            return False
    return True


def lower_this_thread(steps: int) -> bool:
    """Raise the calling thread's nice value by `steps` (lower its priority), relative to what it has, so a
    process started at nice 15 (Ray's default for its workers) is never raised. Linux keeps a nice value per
    thread (`setpriority` on a thread id); elsewhere, or where the call is refused, nothing changes and False
    comes back."""
    if not sys.platform.startswith("linux") or steps <= 0:
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + steps))
    except OSError:
        return False
    return True
