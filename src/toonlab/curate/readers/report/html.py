"""The report's HTML: `index.html` (overview, composition plots, gallery, run) and one page per gallery shot.

Pages are plain HTML with relative links, one stylesheet and one script from `static/`, so the folder opens
from disk in any browser with no server and no network.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import numpy as np

from toonlab.curate.readers.report.data import SCORE_COLUMNS, TAXONOMY_COLUMNS, Summary
from toonlab.curate.readers.report.gallery import Thumb
from toonlab.curate.readers.report.plots import TIMING_ORDER, NotComputed, Plot

FILTER_COLUMNS = ("dynamic_score", *SCORE_COLUMNS)
SHOWN_TAGS = 8  # tags on a gallery card


def _page(title: str, body: str, root: str = "") -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{root}static/report.css">
</head>
<body>
{body}
<script src="{root}static/report.js"></script>
</body>
</html>
"""


def _stat(value: str, label: str) -> str:
    return f'<div class="stat"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def _overview(summary: Summary) -> str:
    keyframes = summary.values.get("key_frame_number", np.zeros(0))
    dynamic = summary.values.get("dynamic_score", np.zeros(0))
    sources = summary.stats.get("sources", {})
    per_clip = f"{keyframes.mean():.1f}" if len(keyframes) else "–"
    per_video = f"{summary.rows / summary.videos:.1f}" if summary.videos else "–"
    cards = [
        _stat(f"{summary.rows:,}", "shots (clips)"),
        _stat(f"{summary.videos:,}", "source videos"),
        _stat(f"{int(keyframes.sum()):,}", "keyframes (unique drawings)"),
        _stat(_duration(summary.seconds_of_video), "of video in shots"),
        _stat(per_clip, "keyframes per clip (Sakuga-42M 34.1)"),
        _stat(per_video, "clips per video (Sakuga-42M 7.9)"),
        _stat(f"{dynamic.mean():.3f}" if len(dynamic) else "–", "mean dynamic score"),
        _stat(f"{sources.get('failed', 0):,}", "failed sources"),
    ]
    if "dup_keep" in summary.classes:  # after `toonlab dedup`
        cards.append(_stat(f"{summary.classes['dup_keep'].get(False, 0):,}", "near-duplicate shots (dup_keep false)"))
    return f'<section id="overview"><h2>Overview</h2><div class="cards">{"".join(cards)}</div></section>'


def _figure(item: Plot, wide: bool = False) -> str:
    note = f" · {escape(item.note)}" if item.note else ""
    return (
        f'<figure class="{"wide" if wide else ""}"><img src="{escape(item.file)}" alt="{escape(item.title)}">'
        f"<figcaption>{escape(item.title)}{note}</figcaption></figure>"
    )


def _code(text: str) -> str:
    """`name` -> <code>name</code> in already escaped text."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _not_computed(items: list[NotComputed]) -> str:
    if not items:
        return ""
    lines = "".join(f"<li><b>{escape(i.title)}</b>: {_code(escape(i.reason))}.</li>" for i in items)
    return f'<div class="nc"><h3>Not computed</h3><ul>{lines}</ul></div>'


def _composition(plots: list[Plot | NotComputed]) -> str:
    if not plots:
        return '<section id="composition"><h2>Composition</h2><p class="muted">The dataset has no shots.</p></section>'
    drawn = [p for p in plots if isinstance(p, Plot)]
    figures = "".join(_figure(p, wide=p.title == "Taxonomy") for p in drawn)
    missing = _not_computed([p for p in plots if isinstance(p, NotComputed)])
    return f'<section id="composition"><h2>Composition</h2><div class="plots">{figures}</div>{missing}</section>'


def _tags(row: dict) -> list[str]:
    tags = row.get("anime_tags") or []
    return (tags.split() if isinstance(tags, str) else list(tags))[:64]


def _search_words(row: dict) -> str:
    """What the tag box matches: tags, timing, taxonomy classes, rating, split."""
    words = [*_tags(row), row.get("timing") or ""]
    words += [str(row[c]).split("(")[0] for c in (*TAXONOMY_COLUMNS, "rating", "split") if row.get(c)]
    return " ".join(w.lower() for w in words if w)


def _card(row: dict, thumbs: list[Thumb]) -> str:
    key = escape(row["key"])
    data = " ".join(
        f'data-{c}="{row[c]:.4f}"' for c in FILTER_COLUMNS if isinstance(row.get(c), int | float)
    )  # absent attribute = null score
    if thumbs:
        cover = thumbs[len(thumbs) // 2]
        image = (
            f'<img loading="lazy" src="{escape(cover.file)}" width="{cover.width}" height="{cover.height}" '
            f'alt="{escape(row["identifier"])}, frame {cover.frame}">'
        )
    else:
        image = '<div class="noimg">no keyframe image in the shards</div>'
    timing = escape(row.get("timing") or "")
    pills = f'<span class="pill t-{timing}">{timing}</span><span class="pill">dyn {row["dynamic_score"]:.2f}</span>'
    pills += f'<span class="pill">{row["key_frame_number"]} kf / {row["frame_number"]} fr</span>'
    pills += "".join(f'<span class="pill">{escape(t)}</span>' for t in _tags(row)[:SHOWN_TAGS])
    return (
        f'<a class="shot" id="card-{key}" href="shots/{key}.html" data-key="{key}" data-timing="{timing}" '
        f'data-tags="{escape(_search_words(row))}" {data}>{image}'
        f'<div class="meta"><div class="id">{escape(row["identifier"])}</div>{pills}</div></a>'
    )


def _range(column: str, rows: list[dict]) -> str:
    values = [row[column] for row in rows if isinstance(row.get(column), int | float)]
    if not values:
        return ""
    lo, hi = np.floor(min(values) * 100) / 100, np.ceil(max(values) * 100) / 100
    step = max((hi - lo) / 100, 0.001)
    inputs = "".join(
        f'<input type="range" name="{column}_{end}" min="{lo}" max="{hi}" step="{step:.4g}" value="{value}" '
        f'aria-label="{column} {end}"><output>{value:.2f}</output>'
        for end, value in (("from", lo), ("to", hi))
    )
    return f'<fieldset data-key="{column}"><legend>{escape(column)}</legend>{inputs}</fieldset>'


def _gallery(summary: Summary, thumbs: dict[str, list[Thumb]]) -> str:
    rows = summary.gallery
    if not rows:
        return '<section id="gallery"><h2>Keyframe gallery</h2><p class="muted">No shots.</p></section>'
    timings = [t for t in TIMING_ORDER if any(r.get("timing") == t for r in rows)]
    checks = "".join(f'<label><input type="checkbox" name="timing" value="{t}" checked> {t}</label> ' for t in timings)
    sorts = [("key:asc", "key")] + [(f"{c}:{d}", f"{c} {d}") for c in FILTER_COLUMNS for d in ("desc", "asc")]
    sorts = [
        (v, label) for v, label in sorts if v == "key:asc" or any(r.get(v.split(":")[0]) is not None for r in rows)
    ]
    options = "".join(f'<option value="{v}">{escape(label)}</option>' for v, label in sorts)
    form = (
        '<form id="filters" onsubmit="return false">'
        + "".join(_range(c, rows) for c in FILTER_COLUMNS)
        + f"<fieldset><legend>timing</legend>{checks}</fieldset>"
        + '<fieldset><legend>tags (all must match a prefix)</legend><input name="tags" type="search" '
        'placeholder="e.g. solo outdoors"></fieldset>'
        + f'<fieldset><legend>sort</legend><select name="sort">{options}</select></fieldset>'
        + '<button type="reset">reset</button><span id="shown"></span></form>'
    )
    cards = "".join(_card(row, thumbs.get(row["key"], [])) for row in rows)
    sample = f"a deterministic sample of {len(rows):,} of {summary.rows:,} shots" if len(rows) < summary.rows else ""
    if summary.gallery_shards < summary.shards:
        sample += f" from {summary.gallery_shards} of {summary.shards} shards"
    return (
        f'<section id="gallery"><h2>Keyframe gallery</h2><p class="muted">Middle keyframe of each shot'
        f"{', ' + sample if sample else ''}; click a shot for its keyframe strip and row.</p>"
        f'{form}<div id="grid">{cards}</div></section>'
    )


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i in numeric else ''}>{escape(str(v))}</td>" for i, v in enumerate(r))
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _run(summary: Summary, stage_plot: Plot | NotComputed) -> str:
    stats = summary.stats
    if not stats:
        return (
            '<section id="run"><h2>Run</h2><p class="muted">No <code>_stats.json</code> in this folder.</p></section>'
        )
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
    drops = sorted((stats.get("failed_by_stage") or {}).items(), key=lambda kv: -kv[1])
    tables = [
        _table(["run", "value"], throughput),
        _table(["failed stage", "sources"], [list(d) for d in drops], {1}) if drops else "",
    ]
    errors = ""
    if summary.error_groups:
        groups = _table(["stage", "reason", "sources"], [list(g) for g in summary.error_groups[:30]], {2})
        first = _table(["source", "stage", "reason"], [[e["source"], e["stage"], e["reason"]] for e in summary.errors])
        first = f"<details><summary>First {len(summary.errors)} errors</summary>{first}</details>"
        errors = f"<h3>Errors by reason</h3>{groups}{first}"
    config = escape(json.dumps(stats.get("config", {}), indent=2, sort_keys=True))
    stages = _figure(stage_plot) if isinstance(stage_plot, Plot) else _not_computed([stage_plot])
    return (
        f'<section id="run"><h2>Run</h2><div class="tables">{"".join(tables)}'
        f'<div class="stages">{stages}</div></div>{errors}'
        f"<details><summary>Configuration</summary><pre>{config}</pre></details></section>"
    )


def index_page(summary: Summary, plots: list, stage_plot: Plot | NotComputed, thumbs: dict[str, list[Thumb]]) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f'<header><h1>Dataset report</h1><div class="sub">{escape(str(summary.out.resolve()))} · {when}</div>'
        '<nav><a href="#overview">Overview</a><a href="#composition">Composition</a>'
        '<a href="#gallery">Gallery</a><a href="#run">Run</a></nav></header>'
    )
    body = _overview(summary) + _composition(plots) + _gallery(summary, thumbs) + _run(summary, stage_plot)
    return _page("Dataset report", f"{header}<main>{body}</main>")


def _cell(value) -> str:
    if isinstance(value, list) and len(value) > 80:
        return f"{value[:80]} … ({len(value)} items)"
    return "null" if value is None else str(value)


def shot_page(row: dict, thumbs: list[Thumb]) -> str:
    figures = "".join(
        f'<figure><img loading="lazy" src="../{escape(t.file)}" width="{t.width}" height="{t.height}" '
        f'alt="frame {t.frame}"><figcaption>frame {t.frame} · held {t.hold} frame{"s" * (t.hold != 1)}'
        "</figcaption></figure>"
        for t in thumbs
    )
    strip = f'<div class="strip">{figures}</div>' if thumbs else '<p class="muted">No keyframe images stored.</p>'
    shown = f"{len(thumbs)} of {row['key_frame_number']} keyframes" if thumbs else ""
    caption = f"<p>{escape(row['text_description'])}</p>" if row.get("text_description") else ""
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(_cell(v))}</td></tr>" for k, v in row.items())
    body = (
        f'<header><h1>{escape(row["identifier"])}</h1><div class="sub">{escape(row["source"])}</div>'
        f'<nav><a href="../index.html#card-{escape(row["key"])}">← gallery</a></nav></header>'
        f"<main>{caption}<h2>Keyframe strip <span class=muted>{shown}</span></h2>{strip}"
        f'<h2>Row</h2><table class="row">{table}</table></main>'
    )
    return _page(row["identifier"], body, root="../")


def write_pages(dest: Path, summary: Summary, plots, stage_plot, thumbs: dict[str, list[Thumb]]) -> Path:
    (dest / "shots").mkdir(parents=True, exist_ok=True)
    for row in summary.gallery:
        (dest / "shots" / f"{row['key']}.html").write_text(shot_page(row, thumbs.get(row["key"], [])))
    index = dest / "index.html"
    index.write_text(index_page(summary, plots, stage_plot, thumbs))
    return index
