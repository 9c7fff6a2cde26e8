"""`toonlab report OUT`: a static HTML report of a curated dataset (one folder, opens from disk, no server).

data.py gathers (one streaming pass over the metadata), plots.py draws the composition plots beside the
Sakuga-42M paper's numbers, gallery.py cuts thumbnails of a sampled set of shots from the shards, html.py
writes the pages and assets.py the stylesheet and the gallery's filter script.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from toonlab.curate.readers.report.assets import write_assets
from toonlab.curate.readers.report.data import gather
from toonlab.curate.readers.report.gallery import extract_thumbnails
from toonlab.curate.readers.report.html import write_pages
from toonlab.curate.readers.report.plots import make_plots


def build_report(
    out: Path | str, dest: Path | str | None = None, gallery_size: int = 240, strip: int = 12, seed: int = 0
) -> Path:
    """Write the report of curate output `out` into `dest` (default `OUT/report`); returns its index.html.

    gallery_size: shots in the gallery (a deterministic sample by hash of key and seed); strip: keyframes per
    shot shown on its page. The folder is rebuilt from scratch.
    """
    out = Path(out)
    if not (out / "metadata").is_dir():
        raise FileNotFoundError(f"{out} has no metadata/ folder: is it a `toonlab curate` output folder?")
    dest = Path(dest) if dest is not None else out / "report"
    for stale in ("plots", "thumbs", "shots", "static"):
        shutil.rmtree(dest / stale, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    summary = gather(out, gallery_size, seed)
    plots, stage_plot = make_plots(summary, dest / "plots")
    thumbs = extract_thumbnails(summary.gallery, out / "shards", dest, strip)
    write_assets(dest)
    return write_pages(dest, summary, plots, stage_plot, thumbs)


__all__ = ["build_report"]
