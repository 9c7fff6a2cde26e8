"""`toonlab report OUT`: a static HTML report of a curated dataset (one folder, opens from disk, no server).

data.py gathers (one streaming pass over the metadata), plots.py draws the composition plots beside the
Sakuga-42M paper's numbers, gallery.py cuts thumbnails of a sampled set of shots from the shards, html.py
writes the pages, assets.py the stylesheet and the gallery's filter script, and place.py swaps the finished
folder in.
"""

from __future__ import annotations

from pathlib import Path

from toonlab.curate.readers.report.assets import write_assets
from toonlab.curate.readers.report.data import gather
from toonlab.curate.readers.report.gallery import extract_thumbnails
from toonlab.curate.readers.report.html import write_pages
from toonlab.curate.readers.report.place import publish
from toonlab.curate.readers.report.plots import make_plots


def build_report(
    out: Path | str, dest: Path | str | None = None, gallery_size: int = 240, strip: int = 12, seed: int = 0
) -> Path:
    """Write the report of curate output `out` into `dest` (default `OUT/report`); returns its index.html.

    gallery_size: shots in the gallery (a deterministic sample by hash of key and seed); strip: keyframes per
    shot shown on its page. The report is built whole beside `dest` and swapped in; `dest` must be absent, empty
    or an earlier report holding only its own files (ValueError otherwise, nothing touched): see place.py.
    """
    out = Path(out)
    if not (out / "metadata").is_dir():
        raise FileNotFoundError(f"{out} has no metadata/ folder: is it a `toonlab curate` output folder?")
    dest = Path(dest) if dest is not None else out / "report"

    def build(folder: Path) -> Path:
        summary = gather(out, gallery_size, seed)
        plots, stage_plot = make_plots(summary, folder / "plots")
        thumbs = extract_thumbnails(summary.gallery, out / "shards", folder, strip)
        write_assets(folder)
        return write_pages(folder, summary, plots, stage_plot, thumbs)

    return publish(dest, build)


__all__ = ["build_report"]
