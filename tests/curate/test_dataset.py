"""KeyframeDataset over real curate output: sampling rules, frames, rows, and exact worker x rank splitting."""

from __future__ import annotations

import io
import shutil
from collections import Counter

import numpy as np
import pyarrow.dataset as pads
import pytest
import torch
from PIL import Image, ImageOps
from synth import ShotSpec, write_clip

from toonlab.curate.config import CurateConfig
from toonlab.curate.readers.dataset import (
    FirstKeyframes,
    HoldWeighted,
    KeyframeDataset,
    UniformKeyframes,
    collate,
    iter_samples,
    shard_paths,
)
from toonlab.curate.run import run_curate
from toonlab.curate.sidecar import read_dataset


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Five sources of one or two shots, one source per shard (shard_max_samples=1): 5 shards."""
    root = tmp_path_factory.mktemp("sharded")
    shots = [[ShotSpec(24, 2, seed=40 + i), ShotSpec(20, 1 + i % 3, seed=50 + i)] for i in range(5)]
    clips = [write_clip(root / f"in/c{i}.mp4", spec, size=(96, 72)) for i, spec in enumerate(shots)]
    out = root / "out"
    stats = run_curate([str(c.path) for c in clips], out, CurateConfig(shard_max_samples=1))
    assert stats["sources"]["failed"] == 0 and len(shard_paths(out)) == 5
    rows = {r["key"]: r for r in pads.dataset(out / "metadata").to_table().to_pylist()}
    assert len(rows) >= 7
    return out, rows


def test_where_sees_sidecar_columns(sharded, tmp_path):
    from toonlab.curate.steps.split import run_split

    out, rows = sharded
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    run_split(copy, val=0.2, test=0.2)
    splits = {r["key"]: r["split"] for r in read_dataset(copy, ["key", "split"]).to_pylist()}
    assert set(splits) == set(rows) and "train" in splits.values()
    samples = list(KeyframeDataset(copy, FirstKeyframes(1), (8, 8), where=lambda r: r["split"] == "train"))
    assert sorted(s["key"] for s in samples) == sorted(k for k, v in splits.items() if v == "train")
    assert all(s["row"]["split"] == "train" for s in samples)


@pytest.mark.parametrize(
    ("sampler", "keyframes", "end", "expected"),
    [
        (UniformKeyframes(3), [0, 3, 7, 9], 12, [0, 2, 3]),
        (UniformKeyframes(5), [4, 6], 8, [0, 0, 0, 1, 1]),  # fewer drawings than N: repeated, in order
        (FirstKeyframes(3), [0, 3, 7, 9], 12, [0, 1, 2]),
        (FirstKeyframes(4), [0, 5], 9, [0, 1, 1, 1]),  # padded with the last drawing
        (HoldWeighted(4), [0, 1, 10], 12, [1, 1, 1, 2]),  # drawing 1 is held 9 of 12 frames
        (HoldWeighted(3), [10, 11, 12], 13, [0, 1, 2]),  # on ones: one pick per drawing
        (HoldWeighted(4), [5], 30, [0, 0, 0, 0]),  # a still
    ],
)
def test_sampling_rules(sampler, keyframes, end, expected):
    assert sampler(keyframes, end) == expected


def test_samples_hold_sampled_frames_rows_and_captions(sharded):
    out, rows = sharded
    dataset = KeyframeDataset(out, HoldWeighted(6), size=(40, 56))
    samples = list(dataset)
    assert sorted(s["key"] for s in samples) == sorted(rows)
    members = {key: m for shard in shard_paths(out) for key, m in iter_samples(shard)}
    for sample in samples:
        row = rows[sample["key"]]
        assert sample["row"] == row
        assert sample["frames"].shape == (6, 3, 40, 56) and sample["frames"].dtype == torch.uint8
        keyframes = row["keyframe_indices"]
        expected = [keyframes[p] for p in HoldWeighted(6)(keyframes, row["end_frame"])]
        assert sample["frame_indices"].tolist() == expected
        assert sample["caption"] == ""  # no captioner ran
        # frame 0 of the sample is the stored JPEG, covered and centre-cropped to (40, 56)
        stored = Image.open(io.BytesIO(members[sample["key"]][f"{expected[0]:06d}.jpg"])).convert("RGB")
        want = np.asarray(ImageOps.fit(stored, (56, 40), Image.Resampling.BILINEAR))
        assert np.array_equal(sample["frames"][0].permute(1, 2, 0).numpy(), want)


def test_where_filters_on_the_row(sharded):
    out, rows = sharded
    keys = [s["key"] for s in KeyframeDataset(out, FirstKeyframes(2), (16, 16), where=lambda r: r["shot_index"] == 2)]
    assert sorted(keys) == sorted(k for k, r in rows.items() if r["shot_index"] == 2) and keys


# 2 ranks x 2 workers = 4 consumers <= 5 shards: whole shards; 3 x 2 = 6 > 5: every 6th sample
@pytest.mark.parametrize("ranks", [2, 3])
def test_workers_and_ranks_cover_every_shot_once(sharded, ranks):
    out, rows = sharded
    seen: Counter[str] = Counter()
    per_rank = []
    for rank in range(ranks):
        dataset = KeyframeDataset(out, UniformKeyframes(2), (16, 16), rank=rank, world_size=ranks)
        loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate)
        keys = [key for batch in loader for key in batch["key"]]
        per_rank.append(len(keys))
        seen.update(keys)
    assert seen == Counter(rows.keys())  # every shot exactly once across ranks x 2 workers
    assert all(per_rank)


def test_collate_stacks_frames(sharded):
    out, _ = sharded
    batch = collate(list(KeyframeDataset(out, UniformKeyframes(3), (8, 12)))[:4])
    assert batch["frames"].shape == (4, 3, 3, 8, 12) and batch["frame_indices"].shape == (4, 3)
    assert len(batch["row"]) == len(batch["caption"]) == 4


def test_bad_placement_and_missing_dataset(sharded, tmp_path):
    out, _ = sharded
    with pytest.raises(ValueError, match="rank"):
        KeyframeDataset(out, UniformKeyframes(2), rank=2, world_size=2)
    with pytest.raises(FileNotFoundError, match="no shards"):
        KeyframeDataset(tmp_path, UniformKeyframes(2))
