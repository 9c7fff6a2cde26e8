"""`toonlab vision ...`: the labelled sprite-animation set and the video models trained on it."""

from __future__ import annotations

import typer

app = typer.Typer(help="Video models trained on curated cartoons.", no_args_is_help=True)


@app.callback()
def _vision() -> None:
    """Video models trained on curated cartoons."""
