"""Video-disjoint splits: every shot of a video (or of a near-duplicate group) in one split, deterministic, in
proportion over many videos."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toonlab.curate.sidecar import read_dataset, write_sidecar
from toonlab.curate.steps.split import assign, group_keys, run_split


def _dataset(root, n_videos: int, shots: int = 3) -> None:
    """Metadata only: n_videos fake videos with `shots` rows each, spread over two shards."""
    (root / "metadata").mkdir(parents=True)
    ids = [(f"video{v:05d}", s) for v in range(n_videos) for s in range(shots)]
    half = len(ids) // 2
    for shard, part in enumerate((ids[:half], ids[half:])):
        table = pa.table({"identifier": [f"{v}:{s}" for v, s in part], "video_id": [v for v, _ in part]})
        pq.write_table(table, root / "metadata" / f"{shard:05d}.parquet")


def test_disjoint_deterministic_and_proportional(tmp_path):
    _dataset(tmp_path, 4000)
    stats = run_split(tmp_path, val=0.05, test=0.1, seed=7)
    table = read_dataset(tmp_path).to_pydict()
    per_video: dict[str, set[str]] = {}
    for video, split in zip(table["video_id"], table["split"], strict=True):
        per_video.setdefault(video, set()).add(split)
    assert all(len(s) == 1 for s in per_video.values())  # video-disjoint
    groups = stats["groups"]
    assert sum(groups.values()) == 4000
    # binomial: 4000 draws, sd of the test count is sqrt(4000 * 0.1 * 0.9) ~ 19; allow 4 sd
    assert abs(groups["test"] - 400) < 76 and abs(groups["val"] - 200) < 56
    first = pq.read_table(tmp_path / "columns" / "split").to_pydict()
    run_split(tmp_path, val=0.05, test=0.1, seed=7)
    assert pq.read_table(tmp_path / "columns" / "split").to_pydict() == first  # same seed, same splits
    run_split(tmp_path, val=0.05, test=0.1, seed=8)
    assert pq.read_table(tmp_path / "columns" / "split").to_pydict()["split"] != first["split"]


def test_assignment_depends_only_on_the_video():
    # adding videos never moves an existing one
    assert [assign(f"v{i}", 0.05, 0.05) for i in range(50)] == [assign(f"v{i}", 0.05, 0.05) for i in range(50)]
    assert {assign(f"v{i}", 0.0, 0.0) for i in range(200)} == {"train"}
    with pytest.raises(ValueError, match="sum below 1"):
        run_split("unused", val=0.5, test=0.5)


def test_near_duplicates_join_videos_into_one_group(tmp_path):
    assert group_keys(["a", "a", "b", "c", "d"], [None, "x", "x", "y", None]) == ["a", "a", "a", "c", "d"]
    _dataset(tmp_path, 300, shots=2)
    table = read_dataset(tmp_path)
    ids = table.column("identifier").to_pylist()
    # one cluster links one shot of every video: all 300 videos must land in one split
    clusters = ["shared" if i.endswith(":0") else None for i in ids]
    half = len(ids) // 2
    sidecars = {
        "00000": pa.table({"identifier": ids[:half], "dup_cluster": clusters[:half]}),
        "00001": pa.table({"identifier": ids[half:], "dup_cluster": clusters[half:]}),
    }
    write_sidecar(tmp_path, "dup_cluster", sidecars, {})
    stats = run_split(tmp_path, val=0.1, test=0.1)
    assert stats["params"]["grouped_by_dup_cluster"] and sum(v > 0 for v in stats["groups"].values()) == 1
    ungrouped = run_split(tmp_path, val=0.1, test=0.1, group_dups=False)
    assert all(v > 0 for v in ungrouped["groups"].values())


def test_group_by_a_label_column_keeps_each_value_on_one_side(tmp_path):
    """600 videos of 60 characters (a label in a sidecar): grouped by character, no character is in two splits;
    grouped by video (the default), most characters are."""
    _dataset(tmp_path, 600, shots=2)
    ids = read_dataset(tmp_path).column("identifier").to_pylist()
    characters = [f"char{int(i.split(':')[0][5:]) % 60}" if not i.startswith("video00007:") else None for i in ids]
    half = len(ids) // 2
    sidecars = {
        "00000": pa.table({"identifier": ids[:half], "character": characters[:half]}),
        "00001": pa.table({"identifier": ids[half:], "character": characters[half:]}),
    }
    write_sidecar(tmp_path, "labels", sidecars, {})

    def sides(table: dict) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for character, split in zip(table["character"], table["split"], strict=True):
            out.setdefault(character, set()).add(split)
        return out

    stats = run_split(tmp_path, val=0.2, test=0.3, seed=1, group_by="character")
    table = read_dataset(tmp_path).to_pydict()
    assert all(len(s) == 1 for c, s in sides(table).items() if c is not None)
    assert sum(stats["groups"].values()) == 61  # 60 characters + the video with no label, grouped by itself
    assert all(stats["groups"][s] > 0 for s in ("train", "val", "test"))
    assert stats["params"]["group_by"] == "character"
    assert {g for g, c in zip(table["split_group"], table["character"], strict=True) if c is None} == {"video00007"}

    run_split(tmp_path, val=0.2, test=0.3, seed=1)
    by_video = sides(read_dataset(tmp_path).to_pydict())
    assert sum(len(s) > 1 for c, s in by_video.items() if c is not None) > 30  # the leak the option prevents
    with pytest.raises(ValueError, match="no such column"):
        run_split(tmp_path, group_by="nonexistent")


def test_rerun_never_removes_folders_it_did_not_create(tmp_path):
    """Folders under columns/ named like an older run's scratch (`.split.tmp`, `.split.old`) are not the step's."""
    _dataset(tmp_path, 20)
    run_split(tmp_path, val=0.2, test=0.2)
    for name in (".split.tmp", ".split.old"):
        (tmp_path / "columns" / name).mkdir()
        (tmp_path / "columns" / name / "mine.txt").write_text("keep")
    run_split(tmp_path, val=0.2, test=0.2, seed=3)
    for name in (".split.tmp", ".split.old"):
        assert (tmp_path / "columns" / name / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in (tmp_path / "columns").iterdir()) == [".split.old", ".split.tmp", "split"]
    assert read_dataset(tmp_path)["split"].null_count == 0 and read_dataset(tmp_path).num_rows == 60
