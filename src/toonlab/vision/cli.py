"""`toonlab vision ...`: the labelled sprite-animation set and the video models trained on it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Video models trained on curated cartoons.", no_args_is_help=True)
console = Console(stderr=True)


def _default_sprites() -> Path:
    media = os.environ.get("TOONLAB_MEDIA")
    return Path(media) / "sprites" if media else Path(".cache/media/sprites")


@app.command("build-sprites")
def build_sprites(
    out: Annotated[Path, typer.Argument(help="Dataset directory (clips, labels, curated shots, splits).")],
    sprites: Annotated[
        Path | None,
        typer.Option(help="Unpacked sprite packages (default $TOONLAB_MEDIA/sprites, else .cache/media/sprites)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel render and curate processes.")] = 1,
    size: Annotated[int, typer.Option(help="Output frame side in pixels.")] = 256,
    min_seconds: Annotated[float, typer.Option(help="Shorter animations loop (or hold their last drawing).")] = 2.0,
    backgrounds: Annotated[str, typer.Option(help="Comma-separated background styles: plain, tiled.")] = "plain,tiled",
    mirror: Annotated[bool, typer.Option(help="Also render Wesnoth units facing the other way.")] = True,
    min_drawings: Annotated[int, typer.Option(help="Leave out animations with fewer distinct drawings.")] = 3,
    limit: Annotated[int | None, typer.Option(help="At most this many animations per package (quick runs).")] = None,
    val: Annotated[float, typer.Option(help="Fraction of characters for validation.")] = 0.1,
    test: Annotated[float, typer.Option(help="Fraction of characters for test.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
) -> None:
    """Render the Wesnoth, SuperTux and Frozen Bubble sprite animations to labelled 24 fps clips, then curate,
    dedup and split them by character."""
    from toonlab.vision.sprites.build import BuildConfig, build

    styles = tuple(s.strip() for s in backgrounds.split(",") if s.strip())
    try:
        if not styles or set(styles) - {"plain", "tiled"}:
            raise ValueError(f"--backgrounds must list plain and/or tiled, not {backgrounds!r}")
        if size < 32 or min_seconds <= 0 or min_drawings < 1 or workers < 1:
            raise ValueError("--size must be >= 32, --min-seconds > 0, --min-drawings and --workers >= 1")
        config = BuildConfig(size, min_seconds, styles, mirror, min_drawings, limit, workers)
        columns = (TextColumn("[bold]render"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("render", total=None)
            stats = build(
                sprites or _default_sprites(),
                out,
                config,
                val,
                test,
                seed,
                on_total=lambda n: progress.update(task, total=n),
                on_done=lambda: progress.advance(task),
            )
    except (ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    _report(stats, out)


def _report(stats: dict, out: Path) -> None:
    for error in stats["render"]["render_errors"][:10]:
        console.print(f"[yellow]not rendered[/yellow] {error}")
    summary = stats["summary"]
    table = Table(title=f"sprite dataset {out}: {stats['render']['clips']} clips, {summary['all']['shots']} shots")
    for column in ("split", "shots", "characters", "character groups", "unique captions"):
        table.add_column(column)
    for name in ("train", "val", "test"):
        row = summary[name]
        table.add_row(name, *(str(row[k]) for k in ("shots", "characters", "groups", "unique_captions")))
    Console().print(table)
    Console().print_json(json.dumps({k: v for k, v in summary["all"].items() if k != "shots"}))


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


def _labels(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


@app.command("train")
def train_command(
    task: Annotated[str, typer.Argument(help="retrieval, classify or svd.")],
    data: Annotated[Path, typer.Option(help="Curated dataset with a split column (`toonlab split`).")],
    out: Annotated[Path, typer.Option(help="Run folder (resumed when it holds a checkpoint).")],
    config: Annotated[str, typer.Option(help="Model config name (see toonlab.vision.models.CONFIGS).")] = "frozen-mean",
    device: Annotated[str, typer.Option(help="cpu or cuda (bf16 autocast); under torchrun one rank each.")] = "cpu",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 300,
    batch_size: Annotated[int | None, typer.Option(help="Global batch (all ranks); default 32, svd 1.")] = None,
    lr: Annotated[
        float | None,
        typer.Option(help="Learning rate of heads, projections, scratch towers (1e-3; svd 1e-5)."),
    ] = None,
    tower_lr: Annotated[float, typer.Option(help="Learning rate of fine-tuned pretrained layers.")] = 1e-4,
    seed: Annotated[int, typer.Option(help="Seed (init, batches, dropout).")] = 0,
    eval_every: Annotated[int, typer.Option(help="Val metrics and a checkpoint every N steps.")] = 100,
    labels: Annotated[str, typer.Option(help="classify: comma-separated label columns.")] = "action,kind",
    caption_column: Annotated[
        str, typer.Option(help="Caption column (falls back to the shard's caption).")
    ] = "caption",
    frames: Annotated[int | None, typer.Option(help="Keyframes per shot (default: the config's).")] = None,
    size: Annotated[int | None, typer.Option(help="Frame side in pixels (default: the config's).")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many shots per split.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Shot and frozen-feature cache (default RUN/cache).")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Video encoder: frames or videomamba[:SIZE] (SIZE tiny/micro/ti/s/m, default ti)."),
    ] = None,
    svd_dir: Annotated[
        Path | None, typer.Option(help="svd: local SVD directory (unet/, vae/, image_encoder/, ...).")
    ] = None,
    temporal_only: Annotated[bool, typer.Option(help="svd: train only the UNet's temporal layers.")] = False,
    stride: Annotated[int, typer.Option(help="svd: every STRIDE-th screen frame (conditioning fps / STRIDE).")] = 1,
    cond_drop: Annotated[float, typer.Option(help="svd: conditioning dropout (for guidance).")] = 0.1,
    grad_checkpoint: Annotated[bool, typer.Option(help="svd: gradient checkpointing in the UNet.")] = False,
) -> None:
    """Train Video-CLIP retrieval or the classifier heads (any video encoder), or fine-tune SVD, on a curated
    dataset."""
    from dataclasses import replace

    from toonlab.vision.models import get_config, with_video_encoder
    from toonlab.vision.train import TrainConfig, leave, train

    try:
        if task == "svd":
            from toonlab.vision.svd_cli import train_svd_run

            last = train_svd_run(
                data, svd_dir, out, steps=steps, frames=frames, size=size, stride=stride, batch_size=batch_size,
                lr=lr, temporal_only=temporal_only, cond_drop=cond_drop, grad_checkpoint=grad_checkpoint,
                checkpoint_every=eval_every, device=device, seed=seed,
            )  # fmt: skip
            Console().print_json(json.dumps({"svd": last}))
            return
        model_config = with_video_encoder(get_config(config), model)
        model_config = replace(model_config, n_frames=frames or model_config.n_frames, size=size or model_config.size)
        tc = TrainConfig(
            task,
            steps,
            batch_size or 32,
            1e-3 if lr is None else lr,
            tower_lr,
            seed=seed,
            eval_every=eval_every,
            caption_column=caption_column,
            labels=_labels(labels),
            limit=limit,
        )
        columns = (
            TextColumn(f"[bold]{task}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as progress:
            bar = progress.add_task(task, total=steps, loss="-")
            on_step = lambda step, total, loss: progress.update(bar, completed=step, loss=f"{loss:.3f}")  # noqa: E731
            metrics = train(data, out, model_config, tc, device, cache_dir or out / "cache", on_step)
        leave()
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    Console().print_json(json.dumps({"val": metrics}))


@app.command("eval")
def eval_command(
    run: Annotated[Path, typer.Argument(help="Run folder of `toonlab vision train`.")],
    data: Annotated[Path | None, typer.Option(help="Curated dataset (svd: default the run's).")] = None,
    split: Annotated[str, typer.Option(help="Split to score.")] = "test",
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    cache_dir: Annotated[Path | None, typer.Option(help="Shot and frozen-feature cache (default RUN/cache).")] = None,
    max_clips: Annotated[int, typer.Option(help="svd: clips in the fixed-grid denoising loss.")] = 64,
    generate: Annotated[int, typer.Option(help="svd: also generate N clips and measure their timing.")] = 0,
    sample_steps: Annotated[int, typer.Option(help="svd: sampling steps of generated clips.")] = 25,
) -> None:
    """Score a trained run on a split: writes RUN/eval-SPLIT.json (and per-query values RUN/eval-SPLIT.npz).

    An SVD run is scored by its held-out denoising loss on a fixed noise grid beside the base UNet's, and with
    --generate by the timing (ones/twos/threes, dynamic score) of generated clips against the real ones."""
    from toonlab.vision.evaluate import evaluate_run
    from toonlab.vision.svd_cli import eval_svd_run, is_svd_run

    try:
        if is_svd_run(run):
            summary = eval_svd_run(run, data, split, max_clips, generate, sample_steps, device)
        elif data is None:
            raise ValueError("--data is required (the curated dataset to score on)")
        else:
            summary, _ = evaluate_run(run, data, split, device, cache_dir or run / "cache")
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    Console().print_json(json.dumps(summary))


@app.command("tiny-svd")
def tiny_svd(
    out: Annotated[Path, typer.Argument(help="New directory for the random tiny SVD.")],
    frames: Annotated[int, typer.Option(help="Default frame count of the UNet config.")] = 4,
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """Write a randomly initialised tiny SVD (the real architecture, ~2.3 M parameters) for runs without weights."""
    from toonlab.vision.svd import tiny_svd as build

    if out.exists() and any(out.iterdir()):
        raise _fail(ValueError(f"{out} exists and is not empty"))
    build(num_frames=frames, seed=seed).save(out)
    console.print(f"random tiny SVD written to {out}")


@app.command("bias")
def bias_command(
    data: Annotated[Path, typer.Option(help="Curated, labelled, character-split dataset (build-sprites).")],
    out: Annotated[Path, typer.Option(help="Output folder: bias.json, bias.md, runs/, cache/ (resumable).")],
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    steps: Annotated[int, typer.Option(help="Step budget of every trained row.")] = 300,
    batch_size: Annotated[int, typer.Option(help="Batch of every trained row.")] = 64,
    seeds: Annotated[int, typer.Option(help="Seeds per row.")] = 3,
    lrs: Annotated[str, typer.Option(help="Learning-rate grid, chosen on val.")] = "1e-3,3e-4",
    frames: Annotated[int, typer.Option(help="Keyframes per shot.")] = 8,
    size: Annotated[int, typer.Option(help="Frame side in pixels.")] = 112,
    labels: Annotated[str, typer.Option(help="Label columns to classify.")] = "action,kind",
    tasks: Annotated[str, typer.Option(help="Tasks, in order: retrieval and/or classify.")] = "retrieval,classify",
    scratch: Annotated[
        str, typer.Option(help="Config of row 5 (scratch-seq, or scratch-natural-seq on a GPU).")
    ] = "scratch-seq",
    videomamba: Annotated[
        str, typer.Option(help="Row 6 config: mamba-frozen-text (VideoMamba-Ti), mamba-micro-frozen-text, or none.")
    ] = "mamba-frozen-text",
    limit: Annotated[int | None, typer.Option(help="At most this many shots per split (reduced runs).")] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
) -> None:
    """Run the cartoon-bias table (rows 1-6, 3 seeds, val-chosen learning rate, paired bootstrap on test)."""
    from toonlab.vision.bias import BiasConfig, run_bias, table_rows

    try:
        rows = table_rows(scratch, videomamba)
        bc = BiasConfig(
            rows,
            tuple(range(seeds)),
            tuple(float(x) for x in lrs.split(",")),
            steps,
            batch_size,
            frames,
            size,
            _labels(labels),
            _labels(tasks),
            limit=limit,
            n_resamples=resamples,
        )
        result = run_bias(data, out, bc, device, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    except (ValueError, FileNotFoundError) as exc:
        raise _fail(exc) from None
    typer.echo((out / "bias.md").read_text())
    Console().print_json(json.dumps({"shots": result["shots"], "test_queries": result["test_queries"]}))
