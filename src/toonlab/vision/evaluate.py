"""Evaluate a trained run on a split of a curated dataset (`toonlab vision eval RUN --data OUT`).

The checkpoint names its task, configs and classes; the split is loaded as in training and the task's metrics
are written to `RUN/eval-<split>.json` (summary) and `RUN/eval-<split>.npz` (per-query values, for paired
bootstraps between runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toonlab.vision.data import ShotSet, load_shots
from toonlab.vision.tasks import ClassifyTask
from toonlab.vision.train import feature_key, place, read_checkpoint, restore


def flatten(per_query: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """{"t2v": {"r1": ...}} -> {"t2v/r1": ...} (npz keys)."""
    return {f"{group}/{name}": np.asarray(v) for group, values in per_query.items() for name, v in values.items()}


def evaluate_run(
    run: Path | str,
    data: Path | str,
    split: str = "test",
    device: str = "cpu",
    cache_dir: Path | str | None = None,
    shots: ShotSet | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """(summary, per-query values) of the run's checkpoint on `split`; also written beside the checkpoint."""
    run = Path(run)
    task, model, model_config, tc = restore(read_checkpoint(run))
    dev, _, _ = place(device)
    model.to(dev)
    labels = task.labels if isinstance(task, ClassifyTask) else ()
    cache = None if cache_dir is None else Path(cache_dir)
    if shots is None:
        shots = load_shots(
            data,
            split,
            model_config.n_frames,
            model_config.size,
            tc.caption_column,
            labels,
            tc.sampler,
            cache,
            tc.limit,
        )
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        prepared = task.prepare(model, shots, dev, cache, feature_key(model_config, tc.seed, tc.task))
        summary, per_query = task.evaluate(model, prepared, dev)
    summary = {"split": split, "shots": len(shots), **summary}
    (run / f"eval-{split}.json").write_text(json.dumps(summary, indent=2))
    np.savez(run / f"eval-{split}.npz", **flatten(per_query))
    return summary, per_query
