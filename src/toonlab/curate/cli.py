"""`toonlab curate INPUT... --out OUT`: cartoon videos in, a Sakuga-style dataset out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from toonlab.curate.choices import ClipMode, ExecutorName, ImageFormat, ShotDetector, ShotMode
from toonlab.curate.config import CurateConfig
from toonlab.curate.records import SourceError, SourceResult

if TYPE_CHECKING:
    from toonlab.curate.run import RunStats

console = Console(stderr=True)


def curate(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Video files, folders (searched recursively), globs, http(s) URLs, URL lists (.txt, one URL a "
            "line) or Sakuga-42M parquet files (.parquet)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output dataset directory.")],
    workers: Annotated[int, typer.Option(help="Parallel worker processes.")] = 1,
    strict: Annotated[bool, typer.Option(help="Exit non-zero if any source failed.")] = False,
    debug: Annotated[bool, typer.Option(help="Print tracebacks of failed sources.")] = False,
    clips: Annotated[ClipMode, typer.Option(help="Also store a clip file per shot.")] = ClipMode.none,
    image_format: Annotated[
        ImageFormat, typer.Option(help="Keyframe images (none: keyframe indices only).")
    ] = ImageFormat.jpg,
    image_quality: Annotated[int, typer.Option(help="Keyframe JPEG/WebP quality (1-100).")] = 90,
    max_side: Annotated[int | None, typer.Option(help="Scale keyframes so the longer side fits.")] = None,
    max_frame_pixels: Annotated[
        int | None, typer.Option(help="Refuse sources with larger pictures (default 8192x4320 = 35.4 MP).")
    ] = None,
    ssim_threshold: Annotated[float, typer.Option(help="Keep a frame if SSIM to the previous is below.")] = 0.95,
    min_scene_len: Annotated[int, typer.Option(help="Minimum shot length in frames.")] = 18,
    shot_detector: Annotated[ShotDetector, typer.Option(help="Shot detector.")] = ShotDetector.animation,
    annotate: Annotated[str, typer.Option(help="Comma-separated annotators to run, in order.")] = "",
    annotator_option: Annotated[
        list[str] | None, typer.Option(help="NAME.KEY=VALUE passed to an annotator (repeatable; VALUE as JSON).")
    ] = None,
    shots: Annotated[
        ShotMode,
        typer.Option(help="given: cut the released scenes; detect: run the detector; auto: given when there are some."),
    ] = ShotMode.auto,
    executor: Annotated[
        ExecutorName, typer.Option(help="local (process pool), ray (Ray actors) or ray-data (Ray Data).")
    ] = ExecutorName.local,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (auto, or HEAD_IP:6379); default: a private local Ray.")
    ] = None,
    shard_samples: Annotated[int, typer.Option(help="Samples (shots) per shard at most.")] = 2000,
    download_cache: Annotated[
        Path | None, typer.Option(help="Folder for downloaded sources (default OUT/_downloads).")
    ] = None,
    download_timeout: Annotated[
        float, typer.Option(help="Seconds to connect, to get the response headers, and between received bytes.")
    ] = 30.0,
    download_min_rate: Annotated[
        float, typer.Option(help="KiB/s a download must average over each --download-timeout span (0: no minimum).")
    ] = 4.0,
    download_max_seconds: Annotated[
        float, typer.Option(help="Seconds one download attempt may take in all, headers included.")
    ] = 900.0,
    download_retries: Annotated[int, typer.Option(help="Retries on 5xx, timeouts and broken connections.")] = 3,
    host_delay: Annotated[float, typer.Option(help="Seconds between requests to one host (>= 0.35 Sakuga).")] = 0.35,
    max_download_mb: Annotated[float, typer.Option(help="Size cap per downloaded file, MiB.")] = 1024.0,
) -> None:
    """Detect shots and unique drawings in each video; write parquet metadata and WebDataset shards."""
    from toonlab.curate.run import RunError, run_curate
    from toonlab.curate.sources import InputError
    from toonlab.curate.stages.download import DownloadConfig
    from toonlab.extras import MissingExtra

    try:
        if ray_address and executor == ExecutorName.local:
            raise ValueError("--ray-address needs --executor ray or ray-data")
        download = DownloadConfig(
            timeout=download_timeout,
            min_rate=download_min_rate * 1024,
            max_seconds=download_max_seconds,
            retries=download_retries,
            host_delay=host_delay,
            max_bytes=max(1, int(max_download_mb * 1024 * 1024)),
        )
        config = CurateConfig(
            ssim_threshold=ssim_threshold,
            min_scene_len=min_scene_len,
            shot_detector=shot_detector,
            image_format=image_format,
            image_quality=image_quality,
            image_max_side=max_side,
            clips=clips,
            annotate=tuple(name.strip() for name in annotate.split(",") if name.strip()),
            annotator_options=parse_annotator_options(annotator_option or []),
            shots=shots,
            shard_max_samples=shard_samples,
            download=download,
            download_cache=str(download_cache) if download_cache else None,
            **({"max_frame_pixels": max_frame_pixels} if max_frame_pixels is not None else {}),
        )
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None

    columns = (
        TextColumn("[bold]curate"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[frames]} frames · {task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("curate", total=None, frames=0, failed=0)

        def on_total(n: int) -> None:
            progress.update(task, total=n)

        def on_progress(outcome: SourceResult | SourceError, stats: RunStats) -> None:
            if isinstance(outcome, SourceError):
                console.print(f"[yellow]failed[/yellow] {outcome.source} ({outcome.stage}): {outcome.reason}")
                if debug and outcome.detail:
                    console.print(outcome.detail, markup=False, highlight=False)
            progress.update(task, advance=1, frames=stats.frames, failed=stats.sources.failed)

        try:
            stats = run_curate(
                inputs,
                out,
                config,
                workers,
                on_progress=on_progress,
                on_total=on_total,
                executor=executor,
                ray_address=ray_address,
            )
        except (InputError, RunError, MissingExtra) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None

    _summary(stats, out)
    if strict and stats.sources.failed:
        raise typer.Exit(1)


def parse_annotator_options(items: list[str]) -> dict[str, dict]:
    """["tags.model_dir=/m", "tags.threshold=0.4"] -> {"tags": {"model_dir": "/m", "threshold": 0.4}}."""
    options: dict[str, dict] = {}
    for item in items:
        key, sep, value = item.partition("=")
        name, dot, option = key.partition(".")
        if not sep or not dot or not name or not option:
            raise ValueError(f"--annotator-option must look like NAME.KEY=VALUE, got {item!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options.setdefault(name, {})[option] = parsed
    return options


def _summary(stats: RunStats, out: Path) -> None:
    warnings = stats.input_warnings
    for line in warnings[:20]:
        console.print(f"[yellow]warning:[/yellow] skipped {line}", markup=True, highlight=False)
    if len(warnings) > 20:
        console.print(f"[yellow]warning:[/yellow] ... and {len(warnings) - 20} more (all in {out / '_stats.json'})")
    src = stats.sources
    table = Table(title=f"dataset: {out}", show_header=False)
    table.add_row("sources ok / failed / already done", f"{src.ok} / {src.failed} / {src.skipped_done}")
    table.add_row("shots", str(stats.shots))
    table.add_row("frames / keyframes", f"{stats.frames} / {stats.keyframes}")
    table.add_row("wall time", f"{stats.seconds:.1f} s ({stats.fps:.0f} frames/s, {stats.executor} executor)")
    if stats.dropped:
        table.add_row("left out", ", ".join(f"{n} {reason}" for reason, n in stats.dropped.items()))
    table.add_row("metadata", str(out / "metadata"))
    table.add_row("shards", str(out / "shards"))
    if src.failed or src.skipped_done:
        table.add_row("errors", str(out / "errors.parquet"))
    Console().print(table)
