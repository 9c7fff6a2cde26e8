"""`toonlab report OUT [--out DIR]`: the static HTML report of a finished dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

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
    except (FileNotFoundError, ValueError) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)  # one line, paths shown as written
        raise typer.Exit(2) from None
    print(index)
