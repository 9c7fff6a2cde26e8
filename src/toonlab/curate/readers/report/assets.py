"""The report's stylesheet and gallery script (vanilla JS, no network): package data in `static/`, copied
beside the HTML pages."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path


def write_assets(dest: Path) -> None:
    (dest / "static").mkdir(parents=True, exist_ok=True)
    for item in resources.files("toonlab.curate.readers.report").joinpath("static").iterdir():
        if item.name.endswith((".css", ".js")):
            with resources.as_file(item) as path:
                shutil.copyfile(path, dest / "static" / item.name)
