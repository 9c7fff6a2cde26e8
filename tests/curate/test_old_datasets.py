"""Datasets written by record version 1 (arrow maps, one shard sample per shot) read as before: the loader, the
dedup and export steps and the report see the same shots, and curate refuses to append version-2 shards to one."""

from __future__ import annotations

import pyarrow as pa
import pytest
from outputs import as_version_1

from toonlab.curate.config import CurateConfig
from toonlab.curate.readers.report import build_report
from toonlab.curate.run import RunError, run_curate
from toonlab.curate.sidecar import read_dataset
from toonlab.curate.steps.dedup import run_dedup
from toonlab.curate.steps.export import export


@pytest.fixture(scope="module")
def both(tmp_path_factory, two_clips):
    root = tmp_path_factory.mktemp("versions")
    run_curate([str(c.path) for c in two_clips], root / "v2", CurateConfig(annotate=("quality",)))
    return as_version_1(root / "v2", root / "v1"), root / "v2"


def _without_version(table: pa.Table) -> list[dict]:
    return sorted(table.drop_columns(["record_version"]).to_pylist(), key=lambda r: r["key"])


def test_metadata_reads_in_the_current_types(both):
    v1, v2 = both
    old, new = read_dataset(v1), read_dataset(v2)
    assert pa.types.is_map(
        pa.parquet.read_schema(next((v1 / "metadata").glob("*.parquet"))).field("annotation_models").type
    )
    assert old.schema == new.schema and _without_version(old) == _without_version(new)


def test_loader_yields_the_same_frames(both):
    torch = pytest.importorskip("torch")
    from toonlab.curate.readers.dataset import KeyframeDataset, UniformKeyframes

    old, new = ({s["key"]: s for s in KeyframeDataset(o, UniformKeyframes(3), size=(24, 32))} for o in both)
    assert set(old) == set(new) and old
    for key, sample in old.items():
        assert torch.equal(sample["frames"], new[key]["frames"])
        assert sample["frame_indices"].tolist() == new[key]["frame_indices"].tolist()


def test_dedup_export_and_report_see_the_same_shots(both, tmp_path):
    v1, v2 = both
    stats = [run_dedup(o) for o in both]
    assert stats[0]["shots"] == stats[1]["shots"] and stats[0]["clusters"] == stats[1]["clusters"]
    exported = [export(o, tmp_path / o.name, fmt="webdataset") for o in both]
    assert exported[0]["rows_out"] == exported[1]["rows_out"] == len(read_dataset(v2))
    keyframes = sum(read_dataset(v2).column("key_frame_number").to_pylist())
    assert exported[0]["tar_members"] == keyframes + len(read_dataset(v2))  # per shot: frames + json
    assert exported[1]["tar_members"] == 2 * keyframes  # per keyframe: image + json
    thumbs = [
        sorted(p.name for p in (build_report(o, tmp_path / f"r{o.name}").parent / "thumbs").rglob("*.jpg"))
        for o in both
    ]
    assert thumbs[0] == thumbs[1] and thumbs[0]


def test_curate_will_not_append_to_an_older_dataset(both, two_clips):
    v1, _ = both
    with pytest.raises(RunError, match="record version"):
        run_curate([str(two_clips[0].path)], v1)
