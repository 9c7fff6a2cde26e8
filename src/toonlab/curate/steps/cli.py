"""Global steps over a finished dataset: `toonlab dedup OUT`, `toonlab split OUT`, `toonlab export OUT --to DEST`.

Each reads the committed metadata and shards and writes beside them (sidecar columns, see sidecar.py) or to a new
directory (export); none rewrites the dataset.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(2) from None


def dedup(
    out: Annotated[Path, typer.Argument(help="Curated dataset directory.")],
    frames: Annotated[int, typer.Option(help="Keyframes hashed per shot (evenly spaced).")] = 4,
    max_distance: Annotated[int, typer.Option(help="Hamming distance (of 64 bits) for two frames to match.")] = 8,
    max_bucket: Annotated[int, typer.Option(help="Skip (and count) hash buckets with more shots than this.")] = 256,
) -> None:
    """Cluster near-duplicate shots across the dataset; writes OUT/columns/dup_cluster."""
    from toonlab.curate.steps.dedup import run_dedup

    try:
        stats = run_dedup(out, frames, max_distance, max_bucket)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    Console().print_json(json.dumps(stats))


def split(
    out: Annotated[Path, typer.Argument(help="Curated dataset directory.")],
    val: Annotated[float, typer.Option(help="Fraction of videos (groups) for validation.")] = 0.05,
    test: Annotated[float, typer.Option(help="Fraction of videos (groups) for test.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Changes the assignment; same seed, same splits.")] = 0,
    group_dups: Annotated[bool, typer.Option(help="Keep near-duplicate clusters in one split (after dedup).")] = True,
    group_by: Annotated[
        str | None, typer.Option(help="Group by this label column (e.g. character) instead of the video.")
    ] = None,
) -> None:
    """Video-disjoint (or --group-by label-disjoint) train/val/test split; writes OUT/columns/split."""
    from toonlab.curate.steps.split import run_split

    try:
        stats = run_split(out, val, test, seed, group_dups, group_by)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    table = Table(title=f"splits of {out} ({stats['videos']} videos)")
    for column in ("split", "clips", "clip fraction", "groups"):
        table.add_column(column)
    for name in ("train", "val", "test"):
        table.add_row(
            name, str(stats["clips"][name]), f"{stats['clip_fraction'][name]:.4f}", str(stats["groups"][name])
        )
    Console().print(table)


def export(
    out: Annotated[Path, typer.Argument(help="Curated dataset directory (only read).")],
    to: Annotated[Path, typer.Option("--to", help="New directory for the selection.")],
    filter_text: Annotated[
        str | None, typer.Option("--filter", help='e.g. "text_prob < 0.1 and dynamic_score > 0.3 and dup_keep"')
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet (metadata) or webdataset (+ samples).")] = "parquet",
) -> None:
    """Copy the rows (and samples) that pass a filter to a new dataset directory; counts drop reasons."""
    from toonlab.curate.steps.export import export as run_export

    try:
        stats = run_export(out, to, filter_text, fmt)
    except (ValueError, FileNotFoundError) as exc:
        _fail(exc)
    table = Table(title=f"export {stats['rows_out']} of {stats['rows_in']} rows -> {to}")
    for column in ("clause", "failed alone", "of which null", "dropped here"):
        table.add_column(column)
    for clause in stats["clauses"]:
        table.add_row(clause["clause"], str(clause["failed"]), str(clause["null"]), str(clause["dropped"]))
    Console().print(table)
    for clause in stats["clauses"]:
        if stats["rows_in"] and clause["null"] == stats["rows_in"]:
            console.print(f"[yellow]warning:[/yellow] {clause['clause']!r} is null on every row (did its step run?)")
