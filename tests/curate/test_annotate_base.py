"""The annotator contract: declared columns land in every row, undeclared ones are refused."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from toonlab.curate.config import CurateConfig
from toonlab.curate.records import VideoRef
from toonlab.curate.run import run_curate
from toonlab.curate.stages import annotate
from toonlab.curate.stages.analyze import AnalyzeStage, ImageEncoder
from toonlab.curate.stages.annotate.base import ShotView, evenly_spaced
from toonlab.curate.write import dataset_schema


class MeanBrightness:
    """A test annotator: mean brightness of the shot's keyframes, which the synthetic clips make knowable."""

    name = "brightness"
    columns = (pa.field("brightness", pa.float64()), pa.field("brightness_keyframes", pa.int64()))
    model_id = "numpy-mean@1"

    def __init__(self, scale: float = 1.0, bogus: bool = False) -> None:
        self.scale, self.bogus = scale, bogus

    def setup(self) -> None:
        pass

    def annotate(self, view):
        images = view.images()
        if self.bogus:
            return {"not_declared": 1}
        return {
            "brightness": self.scale * float(sum(i.mean() for i in images) / len(images)),
            "brightness_keyframes": len(images),
        }


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(annotate.REGISTRY, "brightness", MeanBrightness)


def test_annotator_columns_in_rows_and_schema(tmp_path, two_clips, registered):
    config = CurateConfig(annotate=("brightness",), annotator_options={"brightness": {"scale": 2.0}})
    run_curate([str(c.path) for c in two_clips], tmp_path, config)
    rows = ds.dataset(tmp_path / "metadata").to_table().to_pylist()
    assert "brightness" in dataset_schema().names
    for row in rows:
        assert row["brightness_keyframes"] == row["key_frame_number"]
        assert 0 < row["brightness"] <= 2 * 255
        assert dict(row["annotation_models"]) == {"brightness": "numpy-mean@1"}


def test_columns_null_when_not_run(tmp_path, two_clips, registered):
    run_curate([str(two_clips[0].path)], tmp_path)
    rows = ds.dataset(tmp_path / "metadata").to_table().to_pylist()
    assert rows and all(r["brightness"] is None and r["annotation_models"] is None for r in rows)


def test_undeclared_column_is_an_error_row(tmp_path, two_clips, registered):
    config = CurateConfig(annotate=("brightness",), annotator_options={"brightness": {"bogus": True}})
    stats = run_curate([str(two_clips[0].path)], tmp_path, config)
    assert stats["failed_by_stage"] == {"annotate:brightness": 1}


def test_config_rejects_unknown_annotator_and_metadata_only(registered):
    with pytest.raises(ValueError, match="unknown annotator"):
        CurateConfig(annotate=("nope",))
    with pytest.raises(ValueError, match="need keyframe images"):
        CurateConfig(annotate=("brightness",), image_format="none")


def test_evenly_spaced():
    assert evenly_spaced(10, 4) == [0, 3, 6, 9]
    assert evenly_spaced(3, 4) == [0, 1, 2] and evenly_spaced(1, 3) == [0]
    assert evenly_spaced(10, 1) == [5]


def test_shot_view_decodes_only_requested_keyframes(tmp_path, two_clips):
    clip = two_clips[0]
    result = AnalyzeStage(0.95, 18, "animation", ImageEncoder(), tmp_path).process(VideoRef(str(clip.path), clip.path))
    view = ShotView(result, 0)
    picked = view.images([0, view.n_keyframes - 1])
    assert set(view._decoded) == {0, view.n_keyframes - 1}
    assert picked[0].shape == (clip.height, clip.width, 3)
    everything = view.images()
    assert len(everything) == view.n_keyframes == len(clip.keyframes[0])
    assert everything[0] is picked[0]  # cached, not decoded twice


def test_annotate_time_in_stats(tmp_path, two_clips, registered):
    stats = run_curate([str(two_clips[0].path)], tmp_path, CurateConfig(annotate=("brightness",)))
    assert stats["stage_seconds"]["annotate"] > 0
