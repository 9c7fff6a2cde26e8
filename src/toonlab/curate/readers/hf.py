"""Hugging Face `datasets` views that the plain builders cannot give: whole shots with N frames each.

The plain readers need no helper (see docs/recipes.md): `load_dataset("parquet", data_files="OUT/metadata/*.parquet")`
for the shot rows, `load_dataset("webdataset", data_files="OUT/shards/*.tar")` for one keyframe per row, and
`load_dataset("OUT")` through the dataset card.
"""

from __future__ import annotations

import json
from pathlib import Path

from toonlab.curate.readers.dataset import FrameSampler, KeyframeDataset
from toonlab.extras import require


def hf_keyframes(out: Path | str, sampler: FrameSampler, size: tuple[int, int] = (224, 224)):
    """A `datasets.IterableDataset` of shots: {key, caption, row (json text), frames (N PIL images)}, the N frames
    chosen by `sampler` and resized like `KeyframeDataset` (which it streams)."""
    datasets, image_mod = require("datasets"), require("PIL.Image")

    def generate():
        for sample in KeyframeDataset(out, sampler, size):
            yield {
                "key": sample["key"],
                "caption": sample["caption"],
                "row": json.dumps(sample["row"], default=str),
                "frames": [image_mod.fromarray(f) for f in sample["frames"].permute(0, 2, 3, 1).numpy()],
            }

    features = datasets.Features(
        {
            "key": datasets.Value("string"),
            "caption": datasets.Value("string"),
            "row": datasets.Value("string"),
            "frames": datasets.Sequence(datasets.Image()),
        }
    )
    return datasets.IterableDataset.from_generator(generate, features=features)
