"""The keyframe encode queue: encoder threads append to the spool in the order they finish, and every frame's
blob still holds that frame's bytes; after an error no thread writes to the spool any more."""

from __future__ import annotations

import os
import random
import sys
import threading
import time

import pytest

from toonlab.curate.stage import StageError
from toonlab.curate.stages.analyze import ENCODE_NICENESS, _EncodeQueue
from toonlab.curate.stages.analyze.images import EncodeError
from toonlab.curate.stages.analyze.spool import Spool


class _Frame:
    width, height = 64, 48


class _SlowEncoder:
    """Bytes that name their frame, after a random delay, so threads finish out of order."""

    ext = "jpg"

    def __init__(self, fail_at: int | None = None) -> None:
        self.rng = random.Random(7)
        self.lock = threading.Lock()
        self.fail_at = fail_at

    def encode(self, index: int, frame) -> bytes:
        with self.lock:
            delay = self.rng.uniform(0, 0.004)
        time.sleep(delay)
        if index == self.fail_at:
            raise EncodeError(f"could not encode frame {index} as jpg")
        return f"frame {index} ".encode() * (1 + index % 5)


def test_each_blob_holds_its_own_frame_whatever_order_threads_finish(tmp_path):
    spool = Spool(tmp_path)
    queue = _EncodeQueue(_SlowEncoder(), spool, threads=4, depth=6)
    for index in range(200):
        queue.add(index, _Frame())
    blobs = queue.finish()
    spool.close()
    data = spool.path.read_bytes()
    assert sorted(blobs) == list(range(200))
    offsets = sorted((b.offset, b.offset + b.size) for b in blobs.values())
    assert offsets[0][0] == 0 and all(a[1] == b[0] for a, b in zip(offsets, offsets[1:], strict=False))  # no gap
    assert offsets[-1][1] == len(data)  # and nothing else in the file
    for index, blob in blobs.items():
        assert data[blob.offset : blob.offset + blob.size] == f"frame {index} ".encode() * (1 + index % 5)


class _WatchedSpool(Spool):
    """Counts the puts made after `closed` is set."""

    closed = False
    late_puts = 0

    def put(self, data: bytes, ext: str):
        if self.closed:
            self.late_puts += 1
        return super().put(data, ext)


def test_no_thread_writes_after_an_encode_error(tmp_path):
    spool = _WatchedSpool(tmp_path)
    queue = _EncodeQueue(_SlowEncoder(fail_at=30), spool, threads=3, depth=4)
    with pytest.raises(StageError, match="frame 30"):
        for index in range(100):
            queue.add(index, _Frame())
    queue.close()
    spool.closed = True
    time.sleep(0.05)  # longer than any encode still running would take
    assert spool.late_puts == 0
    spool.discard()


class _NiceRecorder:
    """Records the nice value of the thread that encodes each frame."""

    ext = "jpg"

    def __init__(self) -> None:
        self.nice: set[int] = set()

    def encode(self, index: int, frame) -> bytes:
        self.nice.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return b"x"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_encoder_threads_run_nicer_than_the_analysing_thread(tmp_path):
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    spool = Spool(tmp_path)
    recorder = _NiceRecorder()
    queue = _EncodeQueue(recorder, spool, threads=2, depth=4)
    for index in range(20):
        queue.add(index, _Frame())
    queue.finish()
    spool.discard()
    assert recorder.nice == {min(19, here + ENCODE_NICENESS)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here  # this thread is left as it was
