"""`toonlab` command line: the typer root that mounts each subsystem's commands."""

from __future__ import annotations

import typer

from toonlab.curate.cli import curate
from toonlab.curate.readers.report.cli import export_sakuga, report
from toonlab.curate.steps import cli as steps_cli
from toonlab.tts.cli import app as tts_app
from toonlab.vision.cli import app as vision_app

app = typer.Typer(
    help="toonlab: cartoon video datasets (curate), video models (vision) and multi-reference TTS (tts).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command(name="curate")(curate)
app.command(name="report")(report)
app.command(name="export-sakuga")(export_sakuga)
app.command(name="dedup")(steps_cli.dedup)
app.command(name="split")(steps_cli.split)
app.command(name="export")(steps_cli.export)
app.add_typer(tts_app, name="tts")
app.add_typer(vision_app, name="vision")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
