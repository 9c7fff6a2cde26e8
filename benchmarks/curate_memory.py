"""Peak memory of `toonlab curate` against video length: a fresh process per run (`curate_bench.py` reports it).

Imported by `curate_bench.py`, which puts `tests/curate` (the `synth` clip writer) on `sys.path` first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from synth import ShotSpec, write_clip

ROOT = Path(__file__).resolve().parents[1]


# Peak RSS is read from /proc/self/status VmHWM, which starts afresh at exec: ru_maxrss survives fork+exec
# and would report this (large) benchmark process. Pool workers of the child are its own children.
_CHILD = """
import json, resource, sys
from pathlib import Path
from toonlab.curate.run import run_curate
if sys.argv[1] == "run":
    run_curate([sys.argv[2]], Path(sys.argv[3]), workers=1)
try:
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    own = int(status.split()[0])
except (OSError, IndexError):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"max_rss_kib": max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)}))
"""


def _child_rss(args: list[str]) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["max_rss_kib"]


def memory_vs_length(workdir: Path, n: int, size: tuple[int, int]) -> dict:
    """Max RSS of a fresh process running toonlab on a clip of n and of 4n frames."""
    shots = [ShotSpec(60, hold, seed=i) for i, hold in zip(range(64), [1, 2, 3, (1, 2, 3)] * 16, strict=False)]
    result: dict = {"size": list(size), "import_only_kib": _child_rss(["import"])}
    for frames in (n, 4 * n):
        specs = [shots[i % len(shots)] for i in range(frames // 60)]
        if frames % 60:
            specs.append(ShotSpec(frames % 60, 2, seed=99))
        clip = write_clip(workdir / f"mem_{frames}.mp4", specs, size=size)
        with tempfile.TemporaryDirectory(prefix="toonlab-mem-") as out:
            result[str(frames)] = _child_rss(["run", str(clip.path), out])
    result["ratio_4n_over_n"] = result[str(4 * n)] / result[str(n)]
    return result
