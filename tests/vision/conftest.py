"""A tiny labelled curated dataset: synthetic clips through `toonlab curate`, a split, and a labels sidecar."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.sidecar import metadata_files, read_shard, write_sidecar

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "curate"))  # the synthetic-clip maker lives there
from synth import ShotSpec, write_clip  # noqa: E402

KINDS = ("knight", "blob", "bird")
ACTIONS = ("walk", "attack")


def label_of(video: int) -> dict[str, str]:
    kind, action = KINDS[video % 3], ACTIONS[video // 3 % 2]
    return {"kind": kind, "action": action, "caption": f"a {kind} does a {action}"}


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    """12 one-shot videos (24 frames on twos, 48x48), split train 8 / val 2 / test 2, with kind/action/caption."""
    root = tmp_path_factory.mktemp("labelled")
    clips = [write_clip(root / f"in/v{i:02d}.mp4", [ShotSpec(24, 2, seed=70 + i)], size=(48, 48)) for i in range(12)]
    out = root / "out"
    stats = run_curate([str(c.path) for c in clips], out, CurateConfig())
    assert stats["sources"]["failed"] == 0
    tables = {}
    for meta in metadata_files(out):
        rows = read_shard(out, meta, ["identifier", "video_id"]).to_pylist()
        columns = {"identifier": [r["identifier"] for r in rows], "split": [], "kind": [], "action": [], "caption": []}
        for r in rows:
            video = int(r["video_id"][1:3])  # "v07-<hash>"
            columns["split"].append("test" if video in (10, 11) else "val" if video in (8, 9) else "train")
            for name, value in label_of(video).items():
                columns[name].append(value)
        tables[meta.stem] = pa.table(columns)
    write_sidecar(out, "split", {k: t.select(["identifier", "split"]) for k, t in tables.items()}, {"fixed": True})
    labels = {k: t.select(["identifier", "kind", "action", "caption"]) for k, t in tables.items()}
    write_sidecar(out, "labels", labels, {"synthetic": True})
    return out
