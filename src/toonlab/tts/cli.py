"""`toonlab tts ...`: corpus building, training and synthesis commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Multi-reference Tacotron: corpus, train, say.", no_args_is_help=True)


@app.command()
def corpus(
    out: Path = typer.Argument(..., help="Corpus folder (manifest.jsonl, wavs/, corpus.json)."),
    sentences: int = typer.Option(120, "--sentences", "-n", help="Sentences per speaker and style."),
    voices: str = typer.Option("", help="Comma-separated voice names (default: the first 8 known voices)."),
    styles: str = typer.Option("neutral,happy,sad,angry", help="Comma-separated style names."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Parallel render processes (0 = all cores)."),
    test_frac: float = typer.Option(0.1, "--test-frac", help="Fraction of sentences held out as test."),
    text: Path | None = typer.Option(None, help="Use this file's lines as sentences instead of `fortunes`."),
    list_voices: bool = typer.Option(False, "--list-voices", help="List the known voices and styles, then exit."),
) -> None:
    """Build a fully crossed voice x style x sentence corpus with Debian speech engines (resumable)."""
    from toonlab.tts.corpus import run_cli

    run_cli(out, sentences, voices, styles, jobs, test_frac, text, list_voices)
