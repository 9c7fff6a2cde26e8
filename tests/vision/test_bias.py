"""The bias table end to end on tiny configs; the train / eval / bias commands."""

from __future__ import annotations

import json
from dataclasses import replace

from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.vision.bias import DEFAULT_ROWS, PRIMARY, TEMPORAL_ROWS, BiasConfig, run_bias, table_rows

TINY = dict(zip(DEFAULT_ROWS, [None, "tiny-mean", "tiny-seq", "tiny-frozen", "tiny-seq", "tiny-mamba"], strict=True))


def test_bias_table_rows_contrast_and_resume(labelled, tmp_path):
    bc = BiasConfig(TINY, seeds=(0, 1), lrs=(1e-3, 3e-3), steps=3, batch_size=4, n_frames=4, size=32, n_resamples=200)
    out = tmp_path / "bias"
    result = run_bias(labelled, out, bc, log=lambda m: None)
    assert set(result["table"]) == set(TINY)
    for row, cells in result["table"].items():
        for metric in ("t2v_r1", "v2t_r1", "action_acc", "kind_acc", "order_acc"):
            cell = cells[metric]
            assert cell["lo"] <= cell["estimate"] <= cell["hi"] and len(cell["seeds"]) == 2, (row, metric)
    assert set(result["chosen_lr"][PRIMARY[0]]) == {"retrieval", "classify"}
    primary = result["primary"]
    assert len(primary["per_seed"]) == 2 and primary["pooled"]["lo"] <= primary["pooled"]["estimate"]
    mean_order = result["table"][PRIMARY[1]]["order_acc"]["seeds"]
    assert mean_order == [50.0, 50.0]  # mean pooling cannot tell forward from reversed: exactly chance
    assert "Primary contrast" in (out / "bias.md").read_text()
    controls = [c["contrast"] for c in result["order_control"]]
    assert controls == [f"{row} minus {PRIMARY[1]}, order_acc" for row in TEMPORAL_ROWS]
    assert (out / "bias.md").read_text().count("Temporal-order control") == 2
    runs = sorted(p.parent for p in (out / "runs").rglob("checkpoint.pt"))
    stamps = [p.stat().st_mtime_ns for p in runs]
    again = run_bias(labelled, out, bc, log=lambda m: None)  # everything finished: nothing retrains
    assert [p.stat().st_mtime_ns for p in runs] == stamps and again["table"] == result["table"]


def test_retrieval_only_table(labelled, tmp_path):
    bc = BiasConfig(TINY, seeds=(0,), lrs=(1e-3,), steps=2, batch_size=4, n_frames=4, size=32, n_resamples=100)
    result = run_bias(labelled, tmp_path / "bias", replace(bc, tasks=("retrieval",)), log=lambda m: None)
    assert all(
        set(cells) == {"t2v_r1", "t2v_r5", "t2v_r10", "t2v_ap", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_ap"}
        for cells in result["table"].values()
    )
    assert result["primary"] is not None and "action acc" not in (tmp_path / "bias" / "bias.md").read_text()


def test_train_and_eval_commands(labelled, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    args = ["vision", "train", "retrieval", "--data", str(labelled), "--out", str(run), "--config", "tiny-seq"]
    result = runner.invoke(app, [*args, "--steps", "2", "--batch-size", "4", "--eval-every", "2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["vision", "eval", str(run), "--data", str(labelled)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "eval-test.json").read_text())["shots"] == 2
    bad = runner.invoke(
        app, ["vision", "train", "retrieval", "--data", str(labelled), "--out", str(run), "--config", "nope"]
    )
    assert bad.exit_code == 2 and "unknown model config" in bad.output
    missing = runner.invoke(app, ["vision", "eval", str(tmp_path / "none"), "--data", str(labelled)])
    assert missing.exit_code == 2 and "no checkpoint" in missing.output


def test_table_rows_choose_or_drop_row_six():
    rows = table_rows("scratch-natural-seq", "mamba-micro-frozen-text")
    assert list(rows) == list(DEFAULT_ROWS) and rows[TEMPORAL_ROWS[1]] == "mamba-micro-frozen-text"
    assert rows[next(r for r in rows if r.startswith("5 "))] == "scratch-natural-seq"
    assert TEMPORAL_ROWS[1] not in table_rows(videomamba="none")
