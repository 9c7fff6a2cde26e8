"""The report's HTML: `index.html` (overview, composition plots, gallery, run) and one page per gallery shot.

Pages come from the Jinja2 templates in `templates/` (autoescaped), with the stylesheet and script of `static/`
beside them, so the folder opens from disk in any browser with no server and no network. This module only turns
the gathered summary into the values the templates show.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from toonlab.curate.readers.report.data import SCORE_COLUMNS, TAXONOMY_COLUMNS, Summary
from toonlab.curate.readers.report.gallery import Thumb
from toonlab.curate.readers.report.plots import TIMING_ORDER, NotComputed, Plot
from toonlab.extras import require
from toonlab.io import atomic_write, safe_name

FILTER_COLUMNS = ("dynamic_score", *SCORE_COLUMNS)
SHOWN_TAGS = 8  # tags on a gallery card


def _environment():
    jinja2 = require("jinja2")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("toonlab.curate.readers.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    # `name` -> <code>name</code>, on the escaped text
    env.filters["code"] = lambda text: jinja2.utils.markupsafe.Markup(
        re.sub(r"`([^`]+)`", r"<code>\1</code>", str(jinja2.utils.markupsafe.escape(text)))
    )
    return env


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _overview(summary: Summary) -> list[tuple[str, str]]:
    keyframes = summary.values.get("key_frame_number", np.zeros(0))
    dynamic = summary.values.get("dynamic_score", np.zeros(0))
    sources = summary.stats.get("sources", {})
    cards = [
        (f"{summary.rows:,}", "shots (clips)"),
        (f"{summary.videos:,}", "source videos"),
        (f"{int(keyframes.sum()):,}", "keyframes (unique drawings)"),
        (_duration(summary.seconds_of_video), "of video in shots"),
        (f"{keyframes.mean():.1f}" if len(keyframes) else "–", "keyframes per clip (Sakuga-42M 34.1)"),
        (f"{summary.rows / summary.videos:.1f}" if summary.videos else "–", "clips per video (Sakuga-42M 7.9)"),
        (f"{dynamic.mean():.3f}" if len(dynamic) else "–", "mean dynamic score"),
        (f"{sources.get('failed', 0):,}", "failed sources"),
    ]
    if "dup_keep" in summary.classes:  # after `toonlab dedup`
        cards.append((f"{summary.classes['dup_keep'].get(False, 0):,}", "near-duplicate shots (dup_keep false)"))
    return cards


def _tags(row: dict) -> list[str]:
    tags = row.get("anime_tags") or []
    return (tags.split() if isinstance(tags, str) else list(tags))[:64]


def _search_words(row: dict) -> str:
    """What the tag box matches: tags, timing, taxonomy classes, rating, split."""
    words = [*_tags(row), row.get("timing") or ""]
    words += [str(row[c]).split("(")[0] for c in (*TAXONOMY_COLUMNS, "rating", "split") if row.get(c)]
    return " ".join(w.lower() for w in words if w)


def _card(row: dict, thumbs: list[Thumb]) -> dict:
    scores = [(c, row[c]) for c in FILTER_COLUMNS if isinstance(row.get(c), int | float)]  # absent = null score
    return {
        "key": row["key"],
        "page": safe_name(row["key"]),
        "identifier": row["identifier"],
        "timing": row.get("timing") or "",
        "words": _search_words(row),
        "scores": scores,
        "cover": thumbs[len(thumbs) // 2] if thumbs else None,
        "dynamic": row["dynamic_score"],
        "keyframes": row["key_frame_number"],
        "frames": row["frame_number"],
        "tags": _tags(row)[:SHOWN_TAGS],
    }


def _range(column: str, rows: list[dict]) -> dict | None:
    values = [row[column] for row in rows if isinstance(row.get(column), int | float)]
    if not values:
        return None
    lo, hi = np.floor(min(values) * 100) / 100, np.ceil(max(values) * 100) / 100
    step = f"{max((hi - lo) / 100, 0.001):.4g}"
    return {"column": column, "lo": lo, "hi": hi, "step": step, "ends": [("from", lo), ("to", hi)]}


def _gallery(summary: Summary, thumbs: dict[str, list[Thumb]]) -> dict:
    rows = summary.gallery
    sorts = [("key:asc", "key")] + [(f"{c}:{d}", f"{c} {d}") for c in FILTER_COLUMNS for d in ("desc", "asc")]
    sample = f"a deterministic sample of {len(rows):,} of {summary.rows:,} shots" if len(rows) < summary.rows else ""
    if summary.gallery_shards < summary.shards:
        sample += f" from {summary.gallery_shards} of {summary.shards} shards"
    return {
        "cards": [_card(row, thumbs.get(row["key"], [])) for row in rows],
        "ranges": [r for r in (_range(c, rows) for c in FILTER_COLUMNS) if r],
        "timings": [t for t in TIMING_ORDER if any(r.get("timing") == t for r in rows)],
        "sorts": [(v, t) for v, t in sorts if v == "key:asc" or any(r.get(v.split(":")[0]) is not None for r in rows)],
        "sample": sample,
    }


def _run(summary: Summary, stage_plot: Plot | NotComputed) -> dict | None:
    stats = summary.stats
    if not stats:
        return None
    sources = stats.get("sources", {})
    throughput = [
        ["sources ok / failed / skipped", f"{sources.get('ok', 0)} / {sources.get('failed', 0)} / "
         f"{sources.get('skipped_done', 0)}"],
        ["shots", f"{stats.get('shots', 0):,}"],
        ["frames / keyframes", f"{stats.get('frames', 0):,} / {stats.get('keyframes', 0):,}"],
        ["wall time", f"{stats.get('seconds', 0):.1f} s with {stats.get('workers', '?')} workers"],
        ["throughput", f"{stats.get('fps', 0):.0f} frames/s"],
        ["analysis per worker", f"{stats.get('analysis_fps_per_worker', 0):.0f} frames/s"],
    ]  # fmt: skip
    return {
        "throughput": throughput,
        "drops": [list(d) for d in sorted((stats.get("failed_by_stage") or {}).items(), key=lambda kv: -kv[1])],
        "stage_plot": stage_plot,
        "error_groups": [list(g) for g in summary.error_groups[:30]],
        "errors": [[e["source"], e["stage"], e["reason"]] for e in summary.errors],
        "config": json.dumps(stats.get("config", {}), indent=2, sort_keys=True),
    }


def index_page(summary: Summary, plots: list, stage_plot: Plot | NotComputed, thumbs: dict[str, list[Thumb]]) -> str:
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            title="Dataset report",
            root="",
            out=str(summary.out.resolve()),
            when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            overview=_overview(summary),
            plots=[p for p in plots if isinstance(p, Plot)],
            missing=[p for p in plots if isinstance(p, NotComputed)],
            run=_run(summary, stage_plot),
            **_gallery(summary, thumbs),
        )
    )


def _cell(value) -> str:
    if isinstance(value, list) and len(value) > 80:
        return f"{value[:80]} … ({len(value)} items)"
    return "null" if value is None else str(value)


def shot_page(row: dict, thumbs: list[Thumb]) -> str:
    cells = [(k, _cell(v)) for k, v in row.items()]
    template = _environment().get_template("shot.html.j2")
    return template.render(
        title=row["identifier"], root="../", row=row, page=safe_name(row["key"]), thumbs=thumbs, cells=cells
    )


def write_pages(dest: Path, summary: Summary, plots, stage_plot, thumbs: dict[str, list[Thumb]]) -> Path:
    (dest / "shots").mkdir(parents=True, exist_ok=True)
    for row in summary.gallery:
        atomic_write(dest / "shots" / f"{safe_name(row['key'])}.html", shot_page(row, thumbs.get(row["key"], [])))
    return atomic_write(dest / "index.html", index_page(summary, plots, stage_plot, thumbs))
