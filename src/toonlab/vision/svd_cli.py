"""Command-line entry points of SVD fine-tuning: train, eval, and a tiny random SVD directory for smoke runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def _size(text: str) -> tuple[int, int]:
    height, _, width = text.partition("x")
    try:
        size = (int(height), int(width or height))
    except ValueError:
        raise ValueError(f"--size must be HEIGHTxWIDTH or one side, not {text!r}") from None
    if min(size) < 16 or size[0] % 16 or size[1] % 16:
        raise ValueError(f"--size sides must be multiples of 16 and at least 16, got {text!r}")
    return size


def train_svd_command(
    data: Annotated[Path, typer.Option(help="Curated dataset (`toonlab curate` + `toonlab split`).")],
    svd_dir: Annotated[Path, typer.Option(help="Local SVD directory (unet/, vae/, image_encoder/, ...).")],
    out: Annotated[Path, typer.Option(help="Run folder; an existing run resumes.")],
    steps: Annotated[int, typer.Option(help="Total optimizer steps (raise it to continue a run).")] = 1000,
    frames: Annotated[int, typer.Option(help="Frames per training clip.")] = 14,
    size: Annotated[str, typer.Option(help="Frame size HEIGHTxWIDTH.")] = "256x256",
    stride: Annotated[int, typer.Option(help="Take every STRIDE-th screen frame (fps becomes fps / STRIDE).")] = 1,
    batch_size: Annotated[int, typer.Option(help="Clips per step.")] = 1,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-5,
    temporal_only: Annotated[bool, typer.Option(help="Train only the UNet's temporal layers.")] = False,
    cond_drop: Annotated[float, typer.Option(help="Conditioning dropout probability (for guidance).")] = 0.1,
    grad_checkpoint: Annotated[bool, typer.Option(help="Gradient checkpointing in the UNet.")] = False,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 100,
    device: Annotated[str, typer.Option(help="cpu or cuda (bf16 autocast on cuda).")] = "cpu",
    seed: Annotated[int, typer.Option(help="Seed of noise, noise levels and dropout.")] = 0,
) -> None:
    """Fine-tune SVD image-to-video on the dataset's train shots, conditioned on each shot's first keyframe."""
    from toonlab.vision.svd_train import SVDTrainConfig, train_svd

    try:
        if steps < 1 or frames < 2 or stride < 1 or batch_size < 1 or checkpoint_every < 1:
            raise ValueError("--steps, --stride, --batch-size, --checkpoint-every must be >= 1 and --frames >= 2")
        config = SVDTrainConfig(
            data=str(data), svd_dir=str(svd_dir), frames=frames, size=_size(size), stride=stride,
            batch_size=batch_size, steps=steps, lr=lr, temporal_only=temporal_only, cond_drop=cond_drop,
            grad_checkpoint=grad_checkpoint, checkpoint_every=checkpoint_every, seed=seed, device=device,
        )  # fmt: skip
        last = train_svd(config, out, log=lambda row: console.print(json.dumps(row)) if row["step"] % 10 == 0 else None)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"trained to step {last['step']}: {out}")


def eval_svd_command(
    run: Annotated[Path, typer.Argument(help="A `toonlab vision train svd` run folder.")],
    data: Annotated[Path | None, typer.Option(help="Dataset (default: the run's).")] = None,
    split: Annotated[str, typer.Option(help="Held-out split.")] = "test",
    max_clips: Annotated[int, typer.Option(help="Clips in the denoising-loss evaluation.")] = 64,
    generate: Annotated[int, typer.Option(help="Also generate this many clips and measure their timing.")] = 0,
    steps: Annotated[int, typer.Option(help="Sampling steps of the generated clips.")] = 25,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="Write the results as JSON here (default RUN/eval.json).")] = None,
) -> None:
    """Held-out denoising loss on a fixed noise grid (fine-tuned vs base UNet); optionally generated-clip timing."""
    from toonlab.vision.svd import load_svd
    from toonlab.vision.svd_eval import generated_timing, heldout_loss
    from toonlab.vision.svd_train import load_run

    try:
        config, parts = load_run(run)
        if data is not None:
            config.data = str(data)
        parts.to(device)
        base = load_svd(config.svd_dir).unet.to(device)
        result = {"denoising": heldout_loss(parts, {"finetuned": parts.unet, "base": base}, config, split, max_clips)}
        if generate:
            result["timing"] = generated_timing(parts, config, split, generate, steps)
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    target = out or Path(run) / "eval.json"
    target.write_text(json.dumps(result, indent=2))
    typer.echo(json.dumps(result, indent=2))


def tiny_svd_command(
    out: Annotated[Path, typer.Argument(help="New directory for the random tiny SVD.")],
    frames: Annotated[int, typer.Option(help="Default frame count of the UNet config.")] = 4,
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """Write a randomly initialised tiny SVD (real architecture, ~2.3 M parameters) for smoke runs without weights."""
    from toonlab.vision.svd import tiny_svd

    if out.exists() and any(out.iterdir()):
        console.print(f"[red]error:[/red] {out} exists and is not empty")
        raise typer.Exit(2)
    tiny_svd(num_frames=frames, seed=seed).save(out)
    console.print(f"random tiny SVD written to {out}")
