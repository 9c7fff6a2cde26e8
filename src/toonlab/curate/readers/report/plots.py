"""The report's composition plots (matplotlib, Agg backend, PNG files), beside the Sakuga-42M paper's numbers.

Each plot function takes the `Summary` and the plot folder and returns a `Plot` (a file written) or a
`NotComputed` (the columns it needs are null in every row: the annotator did not run), never an empty chart.
Reference numbers are the paper's and the release's (notes/sakuga.md sections 1.4, 1.5, 3 and 4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonlab.curate.readers.report.data import SCORE_COLUMNS, TAXONOMY_COLUMNS, Summary
from toonlab.extras import require

OURS, PAPER, ACCENT = "#3b6ea8", "#c3c3c3", "#d1495b"

# Sakuga-42M reference shares (percent)
PAPER_LENGTH = {"<12": 23.02, "12–24": 27.51, "24–48": 27.00, "48–96": 15.99, ">96": 6.48}
PAPER_CAPTION = {"<20": 9.32, "20–40": 29.27, "40–60": 54.20, ">60": 7.22}
PAPER_DYNAMIC = {"≤ 1/3": 27.8, "1/3–1/2": 21.3, "1/2–1": 48.9}
PAPER_TAXONOMY = {  # clip counts over train_full + val + test
    "Taxonomy_Time": {"daylight": 251_515, "night": 284_179, "sunset": 61_605, "Others": 640_034},
    "Taxonomy_Venue": {"outdoors": 540_697, "indoors": 297_682, "Others": 398_954},
    "Taxonomy_Media": {"sketch": 145_803, "color_trace": 63_141, "Others": 1_028_389},
    "Taxonomy_Filming": {"looking_at_viewer": 568_025, "looking_away": 103_036, "Others": 566_272},
    "Taxonomy_Composition": {
        "full_body": 57_809,
        "upper_body": 744_137,
        "lower_body": 8_939,
        "out_of_frame": 132_422,
        "Others": 294_026,
    },
    "Taxonomy_Character": {"no_humans": 114_152, "solo": 679_208, "multiple": 443_869, "Others": 104},
}
TIMING_ORDER = ("ones", "twos", "threes", "mixed", "still")
UNIT_SCORES = ("aesthetic_score", "quality_score", "text_prob")  # defined on [0, 1]: plotted on the whole range


@dataclass(frozen=True)
class Plot:
    title: str
    file: str  # relative to the report folder
    note: str = ""


@dataclass(frozen=True)
class NotComputed:
    title: str
    reason: str


def _plt():
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot")
    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "figure.dpi": 110,
        }
    )
    return plt


def _save(fig, folder: Path, name: str, title: str, note: str = "") -> Plot:
    fig.tight_layout()
    fig.savefig(folder / f"{name}.png")
    require("matplotlib.pyplot").close(fig)
    return Plot(title, f"{folder.name}/{name}.png", note)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts * 100.0 / total if total else counts.astype(float)


def _paired_bars(ax, labels: list[str], ours: np.ndarray, paper: list[float] | None) -> None:
    """Ours (and the paper's, when known) as percentages per class, side by side."""
    x = np.arange(len(labels))
    width = 0.4 if paper is not None else 0.7
    bars = ax.bar(x - (width / 2 if paper is not None else 0), ours, width, color=OURS, label="this dataset")
    ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    if paper is not None:
        ax.bar(x + width / 2, paper, width, color=PAPER, label="Sakuga-42M")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xticks(x, labels)
    ax.set_ylabel("% of clips")


def clip_length(summary: Summary, folder: Path) -> Plot:
    plt = _plt()
    keys = summary.values["key_frame_number"]
    counts = np.histogram(keys, bins=[0, 12, 24, 48, 96, np.inf])[0]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    _paired_bars(ax, list(PAPER_LENGTH), _shares(counts), list(PAPER_LENGTH.values()))
    ax.set_xlabel("keyframes (unique drawings) per clip")
    ax.set_title("Clip length in keyframes")
    note = f"mean {keys.mean():.1f} keyframes per clip (Sakuga-42M: 34.1)"
    return _save(fig, folder, "clip_length", "Clip length in keyframes", note)


def dynamic_score(summary: Summary, folder: Path) -> Plot:
    plt = _plt()
    scores = summary.values["dynamic_score"]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.hist(scores, bins=np.linspace(0, 1, 101), color=OURS)
    for value, label in ((1 / 3, "threes"), (0.5, "twos"), (1.0, "ones")):
        ax.axvline(value, color=ACCENT, linestyle="--", linewidth=1)
        ax.annotate(f"{label}\n{value:.2f}", (value, 1), xycoords=("data", "axes fraction"), ha="right", va="top",
                    fontsize=8, color=ACCENT, xytext=(-3, -2), textcoords="offset points")  # fmt: skip
    masses = np.histogram(scores, bins=[0, 1 / 3 + 1e-9, 0.5 + 1e-9, 1.0 + 1e-9])[0]
    shares = _shares(masses)
    note = ", ".join(f"{k}: {s:.1f}% (paper {p}%)" for (k, p), s in zip(PAPER_DYNAMIC.items(), shares, strict=True))
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("dynamic score = keyframes / frames")
    ax.set_ylabel("clips")
    ax.set_title("Dynamic score (timing on ones / twos / threes)")
    return _save(fig, folder, "dynamic_score", "Dynamic score", f"median {np.median(scores):.3f}; {note}")


def score_plot(column: str) -> Callable[[Summary, Path], Plot | NotComputed]:
    """A histogram of one annotator score, or NotComputed when no row has it."""
    title = column.replace("_", " ").capitalize()

    def plot(summary: Summary, folder: Path) -> Plot | NotComputed:
        if column not in summary.values:
            return NotComputed(title, f"`{column}` is null in every row: its annotator did not run")
        plt = _plt()
        values = summary.values[column]
        fig, ax = plt.subplots(figsize=(5.2, 3.2))
        ax.hist(values, bins=np.linspace(0, 1, 41) if column in UNIT_SCORES else 40, color=OURS)
        ax.set_xlabel(column)
        ax.set_ylabel("clips")
        ax.set_title(title)
        note = f"{len(values):,} clips, median {np.median(values):.3f}"
        if column == "aesthetic_score":
            share = (values >= 0.8).mean() * 100
            ax.axvline(0.8, color=ACCENT, linestyle="--", linewidth=1)
            note += f"; {share:.1f}% ≥ 0.8 (Sakuga-42M: 36.1%)"
        return _save(fig, folder, column, title, note)

    return plot


def caption_length(summary: Summary, folder: Path) -> Plot | NotComputed:
    if summary.caption_words is None:
        return NotComputed("Caption length", "`text_description` is null in every row: no captioner ran")
    plt = _plt()
    counts = np.histogram(summary.caption_words, bins=[0, 20, 40, 60, np.inf])[0]
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    _paired_bars(ax, list(PAPER_CAPTION), _shares(counts), list(PAPER_CAPTION.values()))
    ax.set_xlabel("words per caption")
    ax.set_title("Caption length")
    return _save(
        fig, folder, "caption_length", "Caption length", f"median {np.median(summary.caption_words):.0f} words"
    )


def _class_bars(summary: Summary, folder: Path, column: str, title: str, order: tuple[str, ...] = ()) -> Plot:
    plt = _plt()
    counts: Counter = summary.classes[column]
    labels = [c for c in order if c in counts] + sorted(c for c in counts if c not in order)
    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    _paired_bars(ax, labels, _shares(np.array([counts[c] for c in labels])), None)
    ax.set_title(title)
    return _save(fig, folder, column, title, f"{sum(counts.values()):,} clips")


def timing_classes(summary: Summary, folder: Path) -> Plot:
    return _class_bars(summary, folder, "timing", "Timing classes (from hold lengths)", TIMING_ORDER)


def rating(summary: Summary, folder: Path) -> Plot | NotComputed:
    if "rating" not in summary.classes:
        return NotComputed("Rating", "`rating` is null in every row: no tagger ran")
    return _class_bars(summary, folder, "rating", "Rating", ("general", "sensitive", "questionable", "explicit"))


def split(summary: Summary, folder: Path) -> Plot | NotComputed:
    if "split" not in summary.classes:
        return NotComputed("Splits", "`split` is null in every row: no split was assigned")
    return _class_bars(summary, folder, "split", "Splits", ("train", "val", "test"))


def taxonomy(summary: Summary, folder: Path) -> Plot | NotComputed:
    axes_present = [c for c in TAXONOMY_COLUMNS if c in summary.classes]
    if not axes_present:
        return NotComputed("Taxonomy", "the `Taxonomy_*` columns are null in every row: no taxonomy annotator ran")
    plt = _plt()
    rows = (len(axes_present) + 1) // 2
    fig, grid = plt.subplots(rows, 2, figsize=(9.6, 2.5 * rows), squeeze=False)
    for ax, column in zip(grid.flat, axes_present, strict=False):
        ours = Counter({_class_name(k): v for k, v in summary.classes[column].items()})
        paper = PAPER_TAXONOMY[column]
        labels = list(paper) + sorted(c for c in ours if c not in paper)
        reference = _shares(np.array([paper.get(c, 0) for c in labels], dtype=float))
        _paired_bars(ax, labels, _shares(np.array([ours[c] for c in labels])), list(reference))
        ax.set_title(column.removeprefix("Taxonomy_"))
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(grid.flat)[len(axes_present) :]:
        ax.set_visible(False)
    return _save(fig, folder, "taxonomy", "Taxonomy", "share of clips per class, beside the release's")


def _class_name(value: str) -> str:
    """`indoors(label: 1)` -> `indoors`; a bare class name stays as it is."""
    return value.split("(")[0]


def top_tags(summary: Summary, folder: Path, top: int = 25) -> Plot | NotComputed:
    if not summary.tags:
        return NotComputed("Top tags", "`anime_tags` is null in every row: no tagger ran")
    plt = _plt()
    common = summary.tags.most_common(top)[::-1]
    fig, ax = plt.subplots(figsize=(5.2, 0.2 * len(common) + 1.0))
    ax.barh([t for t, _ in common], [c * 100.0 / summary.rows for _, c in common], color=OURS)
    ax.set_xlabel("% of clips")
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(f"Top {len(common)} tags")
    return _save(fig, folder, "top_tags", "Top tags", f"{len(summary.tags):,} distinct tags")


def stage_seconds(summary: Summary, folder: Path) -> Plot | NotComputed:
    seconds = summary.stats.get("stage_seconds") or {}
    if not seconds:
        return NotComputed("Time per stage", "no stage timings in `_stats.json`")
    plt = _plt()
    items = sorted(seconds.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(5.2, 0.3 * len(items) + 1.0))
    ax.barh([k for k, _ in items], [v for _, v in items], color=OURS)
    ax.set_xlabel("seconds, summed over workers")
    ax.set_title("Time per stage")
    return _save(fig, folder, "stage_seconds", "Time per stage")


COMPOSITION = (
    clip_length,
    dynamic_score,
    timing_classes,
    *(score_plot(c) for c in SCORE_COLUMNS),
    caption_length,
    rating,
    split,
    taxonomy,
    top_tags,
)


def make_plots(summary: Summary, folder: Path) -> tuple[list[Plot | NotComputed], Plot | NotComputed]:
    """All composition plots (none for an empty dataset) and the run's stage-time plot, written to `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    composition = [plot(summary, folder) for plot in COMPOSITION] if summary.rows else []
    return composition, stage_seconds(summary, folder)
