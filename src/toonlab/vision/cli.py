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
    for column in ("split", "shots", "characters", "unique captions"):
        table.add_column(column)
    for name in ("train", "val", "test"):
        row = summary[name]
        table.add_row(name, str(row["shots"]), str(row["characters"]), str(row["unique_captions"]))
    Console().print(table)
    Console().print_json(json.dumps({"per_package_shots": summary["all"]["per_package"], "dedup": stats["dedup"]}))
