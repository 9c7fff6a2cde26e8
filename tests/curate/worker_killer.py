"""A test annotator that SIGKILLs the process it runs in on one file name: a stand-in for a decoder segfault or
the OOM killer. Shared by the local-executor and Ray crash tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pyarrow as pa


class KillsItsWorker:
    name = "killer"
    columns = (pa.field("killer_ok", pa.bool_()),)
    model_id = "sigkill@1"
    victim = "crash.mp4"  # file name whose worker dies

    def setup(self) -> None:
        pass

    def annotate(self, view):
        if Path(view.result.ref.source).name == self.victim:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"killer_ok": True}
