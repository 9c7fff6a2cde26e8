"""The recipes of docs/recipes.md on real curate output: Hugging Face `datasets`, the webdataset library, duckdb.

Two tests pin limitations of `datasets` on our layout (map columns; per-frame member names); when one starts
failing, the limitation is gone and the recipe can be simplified.
"""

from __future__ import annotations

import json
import shutil

import pyarrow.compute as pc
import pyarrow.dataset as pads
import pytest

from toonlab.curate.readers.dataset import UniformKeyframes, hf_keyframes, hf_metadata
from toonlab.curate.run import run_curate
from toonlab.curate.steps.split import run_split

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def curated(tmp_path_factory, two_clips):
    out = tmp_path_factory.mktemp("recipes") / "out"
    run_curate([str(c.path) for c in two_clips], out)
    return out


@pytest.fixture(scope="module")
def rows(curated):
    return sorted(pads.dataset(curated / "metadata").to_table().to_pylist(), key=lambda r: r["key"])


def test_hf_parquet_recipe_loads_every_row(curated, rows, tmp_path):
    loaded = hf_metadata(curated, cache_dir=tmp_path)
    assert len(loaded) == len(rows)
    got = sorted(loaded, key=lambda r: r["key"])
    assert [r["keyframe_indices"] for r in got] == [r["keyframe_indices"] for r in rows]
    assert "annotation_models" not in loaded.column_names  # arrow maps have no `datasets` feature type


def test_hf_parquet_builder_cannot_type_map_columns(curated, tmp_path):
    with pytest.raises(ValueError, match="Arrow type map<.* does not have a datasets dtype"):
        datasets.load_dataset(
            "parquet", data_files=str(curated / "metadata" / "*.parquet"), split="train", cache_dir=str(tmp_path)
        )


def test_hf_webdataset_builder_splits_our_keys_but_needs_fixed_member_names(curated, tmp_path):
    from datasets.packaged_modules.webdataset.webdataset import base_plus_ext

    # keys are dot-free, so the first dot splits key from extension and frame members keep their number
    assert base_plus_ext("a-7a707ae5_0001.000012.jpg") == ("a-7a707ae5_0001", "000012.jpg")
    with pytest.raises(ValueError, match="don't share the same prefix or the same types"):
        datasets.load_dataset(
            "webdataset", data_files=str(curated / "shards" / "*.tar"), split="train", cache_dir=str(tmp_path)
        )


def test_hf_keyframes_streams_frames_as_images(curated, rows):
    samples = list(hf_keyframes(curated, UniformKeyframes(3), size=(32, 48)))
    assert sorted(s["key"] for s in samples) == [r["key"] for r in rows]
    for sample in samples:
        assert len(sample["frames"]) == 3 and sample["frames"][0].size == (48, 32)
        assert json.loads(sample["row"])["key"] == sample["key"]


def test_webdataset_library_reads_the_shards(curated, rows):
    wds = pytest.importorskip("webdataset")
    samples = list(wds.WebDataset(sorted(str(p) for p in (curated / "shards").glob("*.tar")), shardshuffle=False))
    assert sorted(s["__key__"] for s in samples) == [r["key"] for r in rows]
    for sample in samples:
        row = json.loads(sample["json"])
        assert sorted(k for k in sample if k.endswith(".jpg")) == [f"{i:06d}.jpg" for i in row["keyframe_indices"]]


def test_duckdb_mean_dynamic_score_per_timing(curated, rows):
    duckdb = pytest.importorskip("duckdb")
    query = f"""
        SELECT timing, avg(dynamic_score) AS mean_dynamic, count(*) AS clips
        FROM read_parquet('{curated}/metadata/*.parquet') GROUP BY timing ORDER BY timing
    """
    got = duckdb.sql(query).fetchall()
    table = pads.dataset(curated / "metadata").to_table()
    grouped = table.group_by("timing").aggregate([("dynamic_score", "mean"), ("dynamic_score", "count")])
    columns = ("timing", "dynamic_score_mean", "dynamic_score_count")
    expected = sorted(zip(*(grouped.column(c).to_pylist() for c in columns), strict=True))
    assert [(t, pytest.approx(m), n) for t, m, n in got] == expected
    assert sum(n for *_, n in got) == len(rows) and pc.sum(table.column("key_frame_number")).as_py() > 0


def test_duckdb_joins_a_sidecar_column(curated, rows, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    copy = tmp_path / "out"
    shutil.copytree(curated, copy)
    run_split(copy, val=0.3, test=0.3)
    query = f"""
        SELECT s.split, count(*) FROM read_parquet('{copy}/metadata/*.parquet') m
        JOIN read_parquet('{copy}/columns/split/*.parquet') s USING (identifier) GROUP BY s.split
    """
    counts = dict(duckdb.sql(query).fetchall())
    assert sum(counts.values()) == len(rows) and set(counts) <= {"train", "val", "test"}
