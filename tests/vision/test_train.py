"""The training loop end to end on a tiny curated dataset: train, resume, checkpoints, metrics.jsonl, eval."""

from __future__ import annotations

import json

import pytest
import torch

from toonlab.vision.data import load_shots
from toonlab.vision.evaluate import evaluate_run
from toonlab.vision.models import get_config
from toonlab.vision.train import CHECKPOINT, METRICS, TrainConfig, read_checkpoint, train


def test_load_shots_dedups_drawings_and_reads_labels(labelled, tmp_path):
    shots = load_shots(labelled, "train", 4, 32, label_columns=("kind", "action"), cache_dir=tmp_path)
    assert len(shots) == 8 and shots.index.shape == (8, 4)
    assert shots.frames.dtype == torch.uint8 and shots.frames.shape[1:] == (3, 32, 32)
    assert len(shots.frames) <= 8 * 4 and int(shots.index.max()) == len(shots.frames) - 1
    assert all(c.startswith("a ") for c in shots.captions) and set(shots.labels["kind"]) <= {"knight", "blob", "bird"}
    again = load_shots(labelled, "train", 4, 32, label_columns=("kind", "action"), cache_dir=tmp_path)
    assert again.keys == shots.keys and torch.equal(again.frames, shots.frames)


@pytest.mark.parametrize(("task", "config"), [("retrieval", "tiny-seq"), ("classify", "tiny-frozen")])
def test_train_resume_and_eval(labelled, tmp_path, task, config):
    tc = TrainConfig(task=task, steps=6, batch_size=4, eval_every=3, log_every=1, warmup=2, labels=("kind", "action"))
    run = tmp_path / "run"
    train(labelled, run, get_config(config), TrainConfig(**{**tc.to_dict(), "steps": 3, "labels": tc.labels}))
    assert read_checkpoint(run)["step"] == 3
    metrics = train(labelled, run, get_config(config), tc)  # resumes at step 3
    lines = [json.loads(line) for line in (run / METRICS).read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert read_checkpoint(run / CHECKPOINT)["step"] == 6 and metrics
    summary, per_query = evaluate_run(run, labelled, "test")
    assert summary["shots"] == 2 and (run / "eval-test.json").exists()
    if task == "retrieval":
        assert 0 <= summary["t2v_r1"] <= 100 and len(per_query["v2t"]["r1"]) == 2
    else:
        assert set(per_query) == {"kind", "action", "order"} and len(per_query["order"]["truth"]) == 4
