"""The ecosystem's own readers on a curated folder, called as their docs say (docs/readers.md): `datasets`
(parquet, webdataset, and the folder itself through its card), pyarrow, duckdb and the `webdataset` library."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from fixed_tags import TAGS, FixedTags
from PIL import Image

from toonlab.curate.config import CurateConfig
from toonlab.curate.pairs import as_dict
from toonlab.curate.run import run_curate
from toonlab.curate.stages import annotate
from toonlab.curate.steps.dedup import run_dedup
from toonlab.curate.steps.split import run_split

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def curated(tmp_path_factory, two_clips):
    out = tmp_path_factory.mktemp("recipes") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(annotate.REGISTRY, "fixed_tags", FixedTags)
        run_curate([str(c.path) for c in two_clips], out, CurateConfig(annotate=("fixed_tags", "taxonomy", "caption")))
    return out


@pytest.fixture(scope="module")
def rows(curated):
    return {r["key"]: r for r in pads.dataset(curated / "metadata").to_table().to_pylist()}


def test_hf_parquet_builder_reads_every_row_and_the_pair_columns(curated, rows, tmp_path):
    loaded = datasets.load_dataset(
        "parquet", data_files=str(curated / "metadata" / "*.parquet"), split="train", cache_dir=str(tmp_path)
    )
    assert len(loaded) == len(rows) > 0
    for row in loaded:
        assert as_dict(row["tag_scores"]) == TAGS
        assert as_dict(row["annotation_models"]) == as_dict(rows[row["key"]]["annotation_models"])
        assert max(as_dict(row["taxonomy_scores"]).values()) > 0
        assert row["keyframe_indices"] == rows[row["key"]]["keyframe_indices"]


def test_hf_webdataset_builder_decodes_one_image_per_keyframe(curated, rows, tmp_path):
    loaded = datasets.load_dataset(
        "webdataset", data_files={"train": str(curated / "shards" / "*.tar")}, split="train", cache_dir=str(tmp_path)
    )
    assert len(loaded) == sum(r["key_frame_number"] for r in rows.values())
    seen = set()
    for sample in loaded:
        doc, row = sample["json"], rows[sample["json"]["shot"]]
        assert isinstance(sample["jpg"], Image.Image) and sample["jpg"].size == (row["width"], row["height"])
        assert doc["frame"] == row["keyframe_indices"][doc["position"]]
        assert doc["caption"] == row["text_description"] and doc["caption"]
        seen.add((doc["shot"], doc["frame"]))
    assert seen == {(k, f) for k, r in rows.items() for f in r["keyframe_indices"]}


def test_load_dataset_of_the_folder_follows_its_card(curated, rows, tmp_path):
    plain = datasets.load_dataset(str(curated), cache_dir=str(tmp_path / "a"))
    assert list(plain) == ["train"] and len(plain["train"]) == len(rows)
    schema = pq.read_schema(sorted((curated / "metadata").glob("*.parquet"))[0]).remove_metadata()
    assert plain["train"].features == datasets.Features.from_arrow_schema(schema)  # the card's header is exact

    copy = tmp_path / "out"
    shutil.copytree(curated, copy)
    run_split(copy, val=0.3, test=0.3)
    run_dedup(copy)  # refreshes the card: the split files now carry dup_cluster too
    split = datasets.load_dataset(str(copy), cache_dir=str(tmp_path / "b"))
    assert set(split) <= {"train", "val", "test"} and sum(len(s) for s in split.values()) == len(rows)
    for name, part in split.items():
        assert set(part["split"]) == {name} and "dup_cluster" in part.column_names
    card = (copy / "README.md").read_text()
    assert card.startswith("---\n") and "license:" in card and "| local file |" in card


def test_webdataset_library_decodes_every_keyframe(curated, rows):
    wds = pytest.importorskip("webdataset")
    urls = sorted(str(p) for p in (curated / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode("pil"))
    assert len(samples) == sum(r["key_frame_number"] for r in rows.values())
    for sample in samples:
        row = rows[sample["json"]["shot"]]
        assert sample["jpg"].size == (row["width"], row["height"])
        assert sample["__key__"] == f"{row['key']}_{sample['json']['frame']:06d}"


def test_pyarrow_and_duckdb_read_the_pair_columns(curated, rows):
    duckdb = pytest.importorskip("duckdb")
    table = pads.dataset(curated / "metadata").to_table()
    assert table.num_rows == len(rows) and pa.types.is_list(table.schema.field("tag_scores").type)
    query = f"""
        SELECT p.key, avg(p.value), count(*)
        FROM (SELECT unnest(tag_scores) AS p FROM read_parquet('{curated}/metadata/*.parquet')) GROUP BY p.key
    """
    got = {key: (mean, n) for key, mean, n in duckdb.sql(query).fetchall()}
    assert got == {tag: (pytest.approx(score), len(rows)) for tag, score in TAGS.items()}


def test_duckdb_mean_dynamic_score_per_timing_and_a_sidecar_join(curated, rows, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    got = duckdb.sql(
        f"SELECT timing, avg(dynamic_score), count(*) FROM read_parquet('{curated}/metadata/*.parquet') GROUP BY 1"
    ).fetchall()
    by_timing: dict[str, list[float]] = {}
    for row in rows.values():
        by_timing.setdefault(row["timing"], []).append(row["dynamic_score"])
    assert {t: (pytest.approx(m), n) for t, m, n in got} == {t: (sum(v) / len(v), len(v)) for t, v in by_timing.items()}
    copy = tmp_path / "out"
    shutil.copytree(curated, copy)
    run_split(copy, val=0.3, test=0.3)
    query = f"""
        SELECT s.split, count(*) FROM read_parquet('{copy}/metadata/*.parquet') m
        JOIN read_parquet('{copy}/columns/split/*.parquet') s USING (identifier) GROUP BY s.split
    """
    counts = dict(duckdb.sql(query).fetchall())
    assert sum(counts.values()) == len(rows) and set(counts) <= {"train", "val", "test"}


def test_hf_keyframes_streams_whole_shots_as_images(curated, rows):
    from toonlab.curate.readers.dataset import UniformKeyframes
    from toonlab.curate.readers.hf import hf_keyframes

    samples = list(hf_keyframes(curated, UniformKeyframes(3), size=(32, 48)))
    assert sorted(s["key"] for s in samples) == sorted(rows)
    for sample in samples:
        assert len(sample["frames"]) == 3 and sample["frames"][0].size == (48, 32)
        assert sample["caption"] == rows[sample["key"]]["text_description"]
