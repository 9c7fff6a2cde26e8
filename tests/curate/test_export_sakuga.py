"""Export to the Sakuga-42M release schema: names, order, types and string formats of the release's demo row."""

from __future__ import annotations

import hashlib
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toonlab.curate.run import run_curate
from toonlab.curate.steps.export_sakuga import export_sakuga, taxonomy_text
from toonlab.curate.write import dataset_schema

# The release's 26 columns and types, written out by hand from the demo parquet (notes/sakuga.md section 2).
RELEASE_COLUMNS = [
    ("identifier", pa.string()),
    ("hash_identifier", pa.string()),
    ("url_link", pa.string()),
    ("scene_start_time", pa.string()),
    ("scene_end_time", pa.string()),
    ("frame_number", pa.float64()),
    ("key_frame_number", pa.float64()),
    ("anime_tags", pa.string()),
    ("user_tags", pa.string()),
    ("text_description", pa.string()),
    ("aesthetic_score", pa.float64()),
    ("dynamic_score", pa.float64()),
    ("rating", pa.string()),
    ("text_prob", pa.float64()),
    ("width", pa.int64()),
    ("height", pa.int64()),
    ("file_ext", pa.string()),
    ("file_size", pa.string()),
    ("fps", pa.float64()),
    ("Taxonomy_Time", pa.string()),
    ("Taxonomy_Venue", pa.string()),
    ("Taxonomy_Media", pa.string()),
    ("Taxonomy_Filming", pa.string()),
    ("Taxonomy_Composition", pa.string()),
    ("Taxonomy_Character", pa.string()),
    ("__index_level_0__", pa.int64()),
]

# Annotator columns as our metadata may carry them (added here when the annotators are not registered).
ANNOTATOR_COLUMNS = [
    ("anime_tags", pa.string()),
    ("text_description", pa.string()),
    ("aesthetic_score", pa.float64()),
    ("rating", pa.string()),
    ("text_prob", pa.float64()),
    *[(f"Taxonomy_{axis}", pa.string()) for axis in ("Time", "Venue", "Media", "Filming", "Composition", "Character")],
]

CAPTION = "A blue robot cat sits at a low table in a tatami room, turning its head toward the viewer."


def _demo_metadata_row() -> dict:
    """The release's demo clip (post 140633, scene 2) as our curate metadata would hold it."""
    return {
        "identifier": "140633:2",
        "hash_identifier": hashlib.sha256(b"140633:2").hexdigest(),
        "url_link": "https://www.sakugabooru.com/data/44f59053d37f1c1269e0ea6199a50b25.mp4",
        "scene_start_time": "00:00:00.125",
        "scene_end_time": "00:00:10.719",
        "frame_number": 253,
        "key_frame_number": 51,
        "dynamic_score": 51 / 253,
        "width": 852,
        "height": 480,
        "fps": 24000 / 1001,  # read from the stream (the release's 29.97 is wrong)
        "file_ext": "mp4",
        "file_size": 1_692_766,
        "source": "140633.mp4",
        "video_id": "140633",
        "shot_index": 2,
        "start_frame": 3,
        "end_frame": 256,
        "keyframe_indices": list(range(3, 54)),
        "timing": "mixed",
        "shard": "00000",
        "key": "140633_0002",
        "record_version": 1,
        "anime_tags": "no_humans pokemon_(creature) solo indoors",
        "text_description": CAPTION,
        "aesthetic_score": 0.8420032262802124,
        "rating": "general",
        "text_prob": 0.0,
        "Taxonomy_Time": "daylight(lable: 0)",  # the release's typo on input is accepted, never written
        "Taxonomy_Venue": "indoors",
        "Taxonomy_Media": "Others",
        "Taxonomy_Filming": "Others(label: -1)",
        "Taxonomy_Composition": "upper_body",
        "Taxonomy_Character": "solo",
    }


def _schema_with_annotators() -> pa.Schema:
    schema = dataset_schema()
    for name, kind in ANNOTATOR_COLUMNS:
        if name not in schema.names:
            schema = schema.append(pa.field(name, kind))
    return schema


def test_demo_row_exports_with_release_names_types_and_formats(tmp_path):
    (tmp_path / "metadata").mkdir()
    second = {**_demo_metadata_row(), "identifier": "140633:3", "Taxonomy_Media": None, "rating": None}
    table = pa.Table.from_pylist([_demo_metadata_row(), second], schema=_schema_with_annotators())
    pq.write_table(table, tmp_path / "metadata" / "00000.parquet")
    assert export_sakuga(tmp_path, tmp_path / "sakuga.parquet") == 2

    exported = pq.read_table(tmp_path / "sakuga.parquet")
    assert [(f.name, f.type) for f in exported.schema] == RELEASE_COLUMNS
    row, other = exported.to_pylist()
    assert row == {
        "identifier": "140633:2",
        "hash_identifier": "621233c59894c37702f6201c73a6de21029619770b06475eeb549930ec538e36",
        "url_link": "https://www.sakugabooru.com/data/44f59053d37f1c1269e0ea6199a50b25.mp4",
        "scene_start_time": "00:00:00.125",
        "scene_end_time": "00:00:10.719",
        "frame_number": 253.0,
        "key_frame_number": 51.0,
        "anime_tags": "no_humans pokemon_(creature) solo indoors",
        "user_tags": None,  # we have no community tags
        "text_description": CAPTION,
        "aesthetic_score": 0.8420032262802124,
        "dynamic_score": 0.2015810276679842,  # bit-exact with the release
        "rating": "general",
        "text_prob": 0.0,
        "width": 852,
        "height": 480,
        "file_ext": "mp4",
        "file_size": "1.61MB",
        "fps": 24000 / 1001,
        "Taxonomy_Time": "daylight(label: 0)",
        "Taxonomy_Venue": "indoors(label: 1)",
        "Taxonomy_Media": "Others(label: -1)",
        "Taxonomy_Filming": "Others(label: -1)",
        "Taxonomy_Composition": "upper_body(label: 1)",
        "Taxonomy_Character": "solo(label: 1)",
        "__index_level_0__": 0,
    }
    assert other["Taxonomy_Media"] is None and other["rating"] is None and other["__index_level_0__"] == 1
    frame = pd.read_parquet(tmp_path / "sakuga.parquet")  # pandas reads the index column back as the index
    assert list(frame.index) == [0, 1] and list(frame.columns) == [name for name, _ in RELEASE_COLUMNS[:-1]]


def test_curated_output_exports_with_nulls_for_what_did_not_run(tmp_path, two_clips):
    out = tmp_path / "out"
    stats = run_curate([str(c.path) for c in two_clips], out)
    assert export_sakuga(out, tmp_path / "s.parquet") == stats["shots"]
    rows = pq.read_table(tmp_path / "s.parquet").to_pylist()
    for index, row in enumerate(rows):
        assert re.fullmatch(r"\d{2}:\d{2}:\d{2}\.\d{3}", row["scene_start_time"])
        assert re.fullmatch(r"\d+\.\d{2}MB", row["file_size"])
        assert (
            row["frame_number"].is_integer() and row["dynamic_score"] == row["key_frame_number"] / row["frame_number"]
        )
        assert row["__index_level_0__"] == index
        assert all(row[c] is None for c in ("anime_tags", "user_tags", "text_description", "aesthetic_score"))


def test_taxonomy_rejects_unknown_classes_and_wrong_labels():
    assert taxonomy_text("Taxonomy_Character", "multiple") == "multiple(label: 2)"
    with pytest.raises(ValueError, match="unknown class"):
        taxonomy_text("Taxonomy_Time", "dusk")
    with pytest.raises(ValueError, match="uses 1"):
        taxonomy_text("Taxonomy_Venue", "indoors(label: 0)")
