"""`train svd` / `eval` for SVD end to end: a curated synthetic dataset, a tiny SVD directory, resume, evaluation."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("diffusers")

from toonlab.cli import app  # noqa: E402
from toonlab.vision.svd import SVDParts, tiny_svd  # noqa: E402
from toonlab.vision.svd_eval import pixel_timing, screen_timing  # noqa: E402
from toonlab.vision.svd_train import ScreenFrames, checkpoints, size_multiple  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("svd") / "tiny"
    tiny_svd().save(path)
    return path


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


def test_train_resume_and_eval(labelled, svd_dir, tmp_path):
    run = tmp_path / "run"
    args = ["vision", "train", "svd", "--data", str(labelled), "--svd-dir", str(svd_dir), "--out", str(run)]
    args += ["--frames", "4", "--size", "32", "--eval-every", "1", "--lr", "1e-3"]
    first = runner.invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, [*args, "--steps", "3"])
    assert resumed.exit_code == 0, resumed.output
    assert [p.name for p in checkpoints(run)] == ["ckpt-0000002", "ckpt-0000003"]  # the newest two kept
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "svd" and config["motion_scale"] > 0

    evaluate = ["vision", "eval", str(run), "--max-clips", "2"]
    result = runner.invoke(app, [*evaluate, "--generate", "1", "--sample-steps", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "eval-test.json").read_text())
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
    again = runner.invoke(app, evaluate)
    assert again.exit_code == 0, again.output
    assert json.loads((run / "eval-test.json").read_text())["denoising"] == denoising  # fixed grid: reproducible


def test_bad_runs_are_clear_errors(labelled, svd_dir, tmp_path):
    base = ["vision", "train", "svd", "--data", str(labelled), "--out", str(tmp_path / "r")]
    missing = runner.invoke(app, [*base, "--svd-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "not an SVD directory" in " ".join(missing.output.split())
    assert not (tmp_path / "r").exists()
    bad_size = runner.invoke(app, [*base, "--svd-dir", str(svd_dir), "--size", "30"])
    assert bad_size.exit_code == 2 and "multiple of 16" in " ".join(bad_size.output.split())

    no_dir = runner.invoke(app, base)
    assert no_dir.exit_code == 2 and "--svd-dir" in no_dir.output
    assert runner.invoke(app, ["vision", "eval", str(tmp_path)]).exit_code == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert runner.invoke(app, ["vision", "tiny-svd", str(tmp_path / "full")]).exit_code == 2
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


@pytest.mark.realmedia
@pytest.mark.parametrize("frames", [8, 24])
def test_pixel_timing_judge_on_real_cartoons(media_dir, tmp_path_factory, frames):
    """The judge of generated clips, on real animation rebuilt from curated keyframes, agrees with the metadata."""
    from toonlab.curate.readers.dataset import KeyframeDataset
    from toonlab.curate.run import run_curate

    out = tmp_path_factory.getbasetemp() / "real-timing"
    if not (out / "metadata").exists():
        names = ["example.avi", "penguin-win-twos.mp4", "penguin-win.mp4", "penguin-wait.mp4", "penguin-shooter.mp4"]
        run_curate([str(media_dir / n) for n in names], out)  # every clip is counted below
    g = torch.Generator().manual_seed(0)
    agree = {"clean": [], "noisy": []}
    for sample in KeyframeDataset(out, ScreenFrames(frames), (128, 128)):
        truth = screen_timing(sample["frame_indices"].tolist())[0]
        clean = sample["frames"].float() / 255
        agree["clean"].append(pixel_timing(clean)[0] == truth)
        agree["noisy"].append(pixel_timing(clean + torch.randn(clean.shape, generator=g) * 2 / 255)[0] == truth)
    assert len(agree["clean"]) >= 5
    for kind, hits in agree.items():
        assert sum(hits) / len(hits) >= 0.75, (kind, hits)


def test_frame_size_multiple():
    assert size_multiple(tiny_svd()) == 4  # VAE x2, UNet x2
    real = SVDParts(  # stable-video-diffusion-img2vid: VAE x8, UNet x8
        unet=SimpleNamespace(config=SimpleNamespace(down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 4)),
        vae=SimpleNamespace(config=SimpleNamespace(block_out_channels=(128, 256, 512, 512))),
        image_encoder=None,
        scheduler=None,
        feature_extractor=None,
    )
    assert size_multiple(real) == 64
