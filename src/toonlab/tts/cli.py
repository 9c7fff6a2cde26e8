"""`toonlab tts ...`: corpus building, training and synthesis commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Multi-reference Tacotron: corpus, train, say.", no_args_is_help=True)
