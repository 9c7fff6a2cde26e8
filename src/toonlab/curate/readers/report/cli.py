"""`toonlab report OUT [--out DIR]` and `toonlab export-sakuga OUT DEST.parquet`: commands over a finished dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)


def report(
    out: Annotated[Path, typer.Argument(help="Curated dataset directory (toonlab curate --out).")],
    dest: Annotated[Path | None, typer.Option("--out", "-o", help="Report folder (default OUT/report).")] = None,
    gallery: Annotated[int, typer.Option(help="Shots in the gallery (a deterministic sample when more).")] = 240,
    strip: Annotated[int, typer.Option(help="Keyframes per shot on its page.")] = 12,
    seed: Annotated[int, typer.Option(help="Changes the gallery sample.")] = 0,
) -> None:
    """Write a static HTML report: composition plots, a filterable keyframe gallery, run stats and errors."""
    from toonlab.curate.readers.report import build_report

    try:
        index = build_report(out, dest, gallery, strip, seed)
    except FileNotFoundError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    print(index)


def export_sakuga(
    out: Annotated[Path, typer.Argument(help="Curated dataset directory.")],
    dest: Annotated[Path, typer.Argument(help="Parquet file to write, in the Sakuga-42M release schema.")],
) -> None:
    """Export the metadata as the Sakuga-42M release's 26 columns (nulls where a value was not computed)."""
    from toonlab.curate.steps.export_sakuga import export_sakuga as run_export

    if not (out / "metadata").is_dir():
        console.print(f"[red]error:[/red] {out} has no metadata/ folder: is it a `toonlab curate` output folder?")
        raise typer.Exit(2)
    rows = run_export(out, dest)
    console.print(f"wrote {rows} rows to {dest}")
