"""`train svd` / `eval` for SVD end to end: a curated synthetic dataset, a tiny SVD directory, resume, evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

pytest.importorskip("diffusers")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "curate"))  # the synthetic-clip maker

from synth import ShotSpec, write_clip  # noqa: E402

from toonlab.curate.config import CurateConfig  # noqa: E402
from toonlab.curate.run import run_curate  # noqa: E402
from toonlab.curate.steps.split import run_split  # noqa: E402
from toonlab.vision.svd import tiny_svd  # noqa: E402
from toonlab.vision.svd_cli import eval_svd_command, tiny_svd_command, train_svd_command  # noqa: E402
from toonlab.vision.svd_eval import pixel_timing, screen_timing  # noqa: E402
from toonlab.vision.svd_train import ScreenFrames, checkpoints  # noqa: E402

app = typer.Typer()
app.command("train-svd")(train_svd_command)
app.command("eval")(eval_svd_command)
app.command("tiny-svd")(tiny_svd_command)
runner = CliRunner()


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    """Six sources of one shot each, on ones, twos or threes, split 4 / 1 / 1 (seeded); plus a tiny SVD dir."""
    root = tmp_path_factory.mktemp("svd_data")
    clips = [write_clip(root / f"in/c{i}.mp4", [ShotSpec(18, 1 + i % 3, seed=60 + i)], size=(64, 64)) for i in range(6)]
    out = root / "out"
    stats = run_curate([str(c.path) for c in clips], out, CurateConfig())
    assert stats["sources"]["failed"] == 0
    counts = run_split(out, val=0.2, test=0.3, seed=1, group_dups=False)
    tiny_svd().save(root / "svd")
    return out, root / "svd", counts


def test_screen_frames_rebuild_holds():
    # Drawings at frames 10, 12, 14 (twos) of a shot ending at 16, read at stride 1 and 2.
    assert ScreenFrames(6)([10, 12, 14], 16) == [0, 0, 1, 1, 2, 2]
    assert ScreenFrames(3, stride=2)([10, 12, 14], 16) == [0, 1, 2]
    assert ScreenFrames(4)([10], 12) == [0, 0, 0, 0]  # past the end: the last drawing stays on screen
    assert screen_timing([0, 0, 1, 1, 2, 2, 3, 3]) == ("twos", 0.5)


def test_pixel_timing_reads_holds():
    g = torch.Generator().manual_seed(0)
    drawings = torch.rand(4, 3, 32, 32, generator=g)
    twos = drawings.repeat_interleave(2, dim=0)  # (8, 3, 32, 32)
    assert pixel_timing(twos) == ("twos", 0.5)
    assert pixel_timing(drawings) == ("ones", 1.0)
    assert pixel_timing(drawings[:1].expand(6, -1, -1, -1)) == ("still", 1 / 6)


def test_train_resume_and_eval(curated, tmp_path):
    out, svd_dir, counts = curated
    assert counts  # the split wrote its sidecar
    run = tmp_path / "run"
    args = ["train-svd", "--data", str(out), "--svd-dir", str(svd_dir), "--out", str(run), "--frames", "4"]
    args += ["--size", "32", "--checkpoint-every", "1", "--lr", "1e-3"]
    first = runner.invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, [*args, "--steps", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert [p.name for p in checkpoints(run)] == ["ckpt-0000002", "ckpt-0000003"]  # the newest two kept
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "svd" and config["motion_scale"] > 0

    result = runner.invoke(app, ["eval", str(run), "--max-clips", "2", "--generate", "1", "--steps", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval.json").read_text())
    denoising = report["denoising"]
    assert denoising["clips"] >= 1 and len(denoising["sigmas"]) == 8
    assert (
        set(denoising["loss"]) == {"finetuned", "base"} and denoising["loss"]["finetuned"] != denoising["loss"]["base"]
    )
    lo, hi = denoising["finetuned_minus_base"]["ci95"]
    assert lo <= denoising["finetuned_minus_base"]["mean"] <= hi
    timing = report["timing"]
    assert timing["clips"] == 1 and sum(timing["generated"]["labels"].values()) == 1
    # The pixel judge reads the real synthetic clips' holds exactly as the metadata does.
    assert timing["judge"]["label_agreement_clean"] == 1.0
    again = runner.invoke(app, ["eval", str(run), "--max-clips", "2", "--out", str(tmp_path / "again.json")])
    assert json.loads((tmp_path / "again.json").read_text())["denoising"] == denoising  # fixed grid: reproducible
    assert again.exit_code == 0


def test_bad_runs_are_clear_errors(curated, tmp_path):
    out, svd_dir, _ = curated
    base = ["train-svd", "--data", str(out), "--out", str(tmp_path / "r")]
    missing = runner.invoke(app, [*base, "--svd-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "not an SVD directory" in " ".join(missing.output.split())
    assert not (tmp_path / "r").exists()
    bad_size = runner.invoke(app, [*base, "--svd-dir", str(svd_dir), "--size", "30"])
    assert bad_size.exit_code == 2 and "multiples of 16" in " ".join(bad_size.output.split())
    assert runner.invoke(app, ["eval", str(tmp_path)]).exit_code == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert runner.invoke(app, ["tiny-svd", str(tmp_path / "full")]).exit_code == 2
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
