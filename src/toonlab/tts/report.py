"""The evaluation report: case and sweep rows -> figures with 95% intervals (`summarise`), markdown tables
(`to_markdown`) and confusion matrices (PNG).

Sources of every judged figure: `output` (the model's clips), and the same cases' real targets `real` (as
recorded), `vocoded` (through the model's vocoder) and `degraded` (smoothed, compressed, vocoded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toonlab.tts.judging import SPEAKER, Judges
from toonlab.tts.manifest import Corpus
from toonlab.tts.metrics import (
    bootstrap_interval,
    correlation_interval,
    partial_correlation,
    pearson,
    spearman,
    wilson_interval,
    word_error_rate,
)
from toonlab.tts.style_measures import MEASURES

SOURCES = ("output", "real", "vocoded", "degraded")
SOURCE_NAMES = {
    "output": "outputs",
    "real": "real targets",
    "vocoded": "vocoded real",
    "degraded": "degraded real",
}


def _rate(hits: Sequence[bool]) -> dict[str, Any]:
    n, k = len(hits), int(sum(hits))
    return {"accuracy": k / n if n else float("nan"), "interval": wilson_interval(k, n), "n": n}


def _mean_ci(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    v = np.asarray([x for x in values if x == x], float)
    mean = float(v.mean()) if len(v) else float("nan")
    return {"mean": mean, "interval": bootstrap_interval(lambda i: float(v[i].mean()), len(v), seed=seed)}


def _confusion_png(path: Path, truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str], title: str):
    from toonlab.extras import require

    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    m = np.zeros((len(classes), len(classes)), int)
    for t, p in zip(truth, predicted, strict=True):
        m[classes.index(t), classes.index(p)] += 1
    size = 2.5 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(m, cmap="Blues")
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("judged from the output")
    ax.set_ylabel("reference's value")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _control(rows: Sequence[dict[str, Any]], judges: Judges, corpus: Corpus, out: Path) -> dict[str, Any]:
    control: dict[str, Any] = {}
    for attr, judge in judges.per_attribute.items():
        classes = corpus.labels(attr)
        truth = [r["truth"][attr] for r in rows]
        png = out / f"confusion_{attr}.png"
        judged = [r["judged"]["output"][attr] for r in rows]
        _confusion_png(png, truth, judged, classes, f"{attr}: reference vs judged output ({len(rows)} cases)")
        c: dict[str, Any] = {
            "judge": judge.name,
            "judge_cv_accuracy": judge.cv,
            "judge_held_out": judges.held_out_accuracy[attr],
            "chance": 1.0 / len(classes),
            "classifier": {s: _rate([r["judged"][s][attr] == r["truth"][attr] for r in rows]) for s in SOURCES},
            "confusion": png.name,
        }
        if attr in judges.statistics.means:
            c["model_free"] = {s: _rate([r["model_free"][s][attr] == r["truth"][attr] for r in rows]) for s in SOURCES}
            c["agreement"] = _rate([r["judged"]["output"][attr] == r["model_free"]["output"][attr] for r in rows])
        control[attr] = c
    keys = ("cos_speaker_ref", "cos_other_ref", "cos_target_speaker_centroid", "cos_other_speaker_centroid")
    if SPEAKER in control:
        control[SPEAKER].update({k: _mean_ci([r[k] for r in rows]) for k in keys if rows and k in rows[0]})
    return control


def _style_measures(rows: Sequence[dict[str, Any]], judges: Judges) -> dict[str, Any]:
    """Per non-speaker attribute: real means per value, output means per reference value, and per measure the
    rank correlation over cases between the output's value and the real mean of its reference's value."""
    stats, result = judges.statistics, {}
    for attr, means in stats.means.items():
        got = np.array([r["prosody"]["output"] for r in rows], float)  # (N, 4) speaker-normalised
        expected = np.array([means[r["truth"][attr]] for r in rows], float)  # (N, 4)
        by_value = {v: [r["prosody"]["output"] for r in rows if r["truth"][attr] == v] for v in means}
        result[attr] = {
            "real": {v: m.tolist() for v, m in means.items()},
            "output": {v: np.mean(x, 0).tolist() if x else None for v, x in by_value.items()},
            "spearman": [spearman(got[:, k], expected[:, k]) for k in range(len(MEASURES))],
        }
    return result


def _sweeps(sweep_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in sorted({r["attr"] for r in sweep_rows}):
        mine = [r for r in sweep_rows if r["attr"] == attr]
        out[attr] = {"sweeps": len(mine)}
        for source in SOURCES:
            rho = np.array([r["spearman"][source] for r in mine if source in r["spearman"]], float)  # (S, 4)
            if not len(rho):
                continue
            out[attr][source] = [
                {
                    "mean": float(np.nanmean(col)) if np.isfinite(col).any() else float("nan"),
                    "interval": bootstrap_interval(lambda i, col=col: float(np.nanmean(col[i])), len(col)),
                    "positive": float(np.mean(np.nan_to_num(col) > 0)),
                }
                for col in rho.T
            ]
    return out


def _wer(rows: Sequence[dict[str, Any]], source: str) -> dict[str, Any]:
    refs, hyps = [r["text"] for r in rows], [r["asr"][source] for r in rows]
    wer = word_error_rate(refs, hyps)

    def stat(i: np.ndarray) -> float:
        return word_error_rate([refs[j] for j in i], [hyps[j] for j in i])

    return {"wer": wer, "interval": bootstrap_interval(stat, len(rows), resamples=500)}


def _length(rows: Sequence[dict[str, Any]], attributes: Sequence[str]) -> dict[str, Any]:
    n, secs, target = len(rows), [r["seconds"] for r in rows], [r["target_seconds"] for r in rows]
    length: dict[str, Any] = {}
    for attr in attributes:
        ref = [r["reference_seconds"][attr] for r in rows]
        raw, part = pearson(secs, ref), partial_correlation(secs, ref, target)
        length[attr] = {
            "pearson": raw,
            "pearson_interval": correlation_interval(raw, n),
            "partial": part,
            "partial_interval": correlation_interval(part, n, controls=1),
        }
    raw = pearson(secs, target)
    length["target"] = {"pearson": raw, "pearson_interval": correlation_interval(raw, n)}
    return length


def summarise(
    rows: Sequence[dict[str, Any]],
    sweep_rows: Sequence[dict[str, Any]],
    judges: Judges,
    corpus: Corpus,
    model_attributes: Sequence[str],
    run: str,
    out: Path,
) -> dict[str, Any]:
    """Aggregate case and sweep rows into the report and write the confusion matrices into `out`."""
    report: dict[str, Any] = {
        "run": run,
        "model_attributes": list(model_attributes),
        "corpus": str(corpus.root),
        "cases": len(rows),
        "judges": {
            "train_utterances": judges.n_train,
            "held_out_utterances": judges.n_held_out,
            "audio": f"{judges.domain} real recordings plus their degraded copies",
        },
        "control": _control(rows, judges, corpus, out),
        "style_statistics": judges.statistics.to_dict(),
        "style_measures": _style_measures(rows, judges),
        "sweeps": _sweeps(sweep_rows),
        "fidelity": {
            "mcd_db": _mean_ci([r["mcd"] for r in rows]),
            "mcd_vocoder_floor_db": _mean_ci([r["mcd_vocoder_floor"] for r in rows]),
            "f0_rmse_hz": _mean_ci([r["f0_rmse"] for r in rows]),
            "hit_max_steps": int(sum(r["hit_max_steps"] for r in rows)),
            "rtf": _mean_ci([r.get("rtf", float("nan")) for r in rows]),
        },
        "length": _length(rows, corpus.attributes),
    }
    if rows and "asr" in rows[0]:
        report["intelligibility"] = {s: _wer(rows, s) for s in SOURCES}
    return report


# ---------------------------------------------------------------- markdown


def _pct(x: float | None) -> str:
    return "–" if x is None or x != x else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or x != x else f"{x:.{digits}f}"


def _ci(v: dict[str, Any], key: str, fmt: Any) -> str:
    lo, hi = v.get("interval") or v.get(f"{key}_interval") or (float("nan"), float("nan"))
    return f"{fmt(v[key])} [{fmt(lo)}, {fmt(hi)}]"


def _control_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        "| judge | attribute | training-split CV | held-out real | held-out vocoded | held-out degraded |",
        "|---|---|---|---|---|---|",
    ]
    for attr, c in report["control"].items():
        h = c["judge_held_out"]
        cv = c["judge_cv_accuracy"].get(c["judge"])
        lines.append(
            f"| {c['judge']} | {attr} | {_pct(cv)} | {_pct(h.get('real'))} | {_pct(h.get('vocoded'))} | "
            f"{_pct(h.get('degraded'))} |"
        )
    head = " | ".join(SOURCE_NAMES[s] for s in SOURCES)
    lines += ["", f"| control (95% interval) | {head} | chance |", "|---" * (len(SOURCES) + 2) + "|"]
    for attr, c in report["control"].items():
        for kind, name in (("classifier", "judge"), ("model_free", "model-free measures")):
            if kind in c:
                cells = " | ".join(_ci(c[kind][s], "accuracy", _pct) for s in SOURCES)
                lines.append(f"| {attr} ({name}) | {cells} | {_pct(c['chance'])} |")
        if "agreement" in c:
            lines.append(f"| {attr}: judge and measures agree on outputs | {_ci(c['agreement'], 'accuracy', _pct)} |")
    return lines


def _style_lines(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for attr, m in report.get("style_measures", {}).items():
        lines += [
            "",
            f"| {attr}: speaker-normalised measure, real / outputs | " + " | ".join(MEASURES) + " |",
            "|---" * (len(MEASURES) + 1) + "|",
        ]
        for v, real in m["real"].items():
            got = m["output"].get(v) or [float("nan")] * len(MEASURES)
            lines.append(
                f"| {v} | " + " | ".join(f"{_num(a)} / {_num(b)}" for a, b in zip(real, got, strict=True)) + " |"
            )
        lines.append(
            "| rank r over cases (output vs its reference's real mean) | "
            + " | ".join(_num(r) for r in m["spearman"])
            + " |"
        )
    for attr, sw in report.get("sweeps", {}).items():
        lines += [
            "",
            f"| {attr} sweep ({sw['sweeps']} sweeps): mean Spearman [95%], share > 0 | " + " | ".join(MEASURES) + " |",
            "|---" * (len(MEASURES) + 1) + "|",
        ]
        for source in SOURCES:
            if source in sw:
                cells = [f"{_ci(x, 'mean', _num)}, {_pct(x['positive'])}" for x in sw[source]]
                lines.append(f"| {SOURCE_NAMES[source]} | " + " | ".join(cells) + " |")
    return lines


def to_markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables."""
    lines = [
        f"# Evaluation: {report.get('run') or 'run'}",
        "",
        f"{report['cases']} crossed cases on held-out sentences; model sub-encoders: "
        f"{', '.join(report['model_attributes'])}; corpus {report['corpus']}.",
        "",
        f"Vocoder: {report.get('vocoder', '–')}. Judges trained on {report['judges']['audio']}.",
        "",
        *_control_lines(report),
    ]
    spk = report["control"].get(SPEAKER, {})
    if "cos_other_ref" in spk:
        lines += [
            "",
            "| speaker cosine (GE2E) | to the speaker reference / its speaker | to the other reference / its speaker |",
            "|---|---|---|",
            f"| utterance | {_ci(spk['cos_speaker_ref'], 'mean', _num)} | {_ci(spk['cos_other_ref'], 'mean', _num)} |",
            f"| speaker centroid | {_ci(spk['cos_target_speaker_centroid'], 'mean', _num)} | "
            f"{_ci(spk['cos_other_speaker_centroid'], 'mean', _num)} |",
        ]
    lines += _style_lines(report)
    fid = report["fidelity"]
    lines += [
        "",
        "| fidelity | value [95%] |",
        "|---|---|",
        f"| MCD (DTW) | {_ci(fid['mcd_db'], 'mean', _num)} dB "
        f"(vocoder floor {_num(fid['mcd_vocoder_floor_db']['mean'])} dB) |",
        f"| F0 RMSE (voiced in both) | {_ci(fid['f0_rmse_hz'], 'mean', _num)} Hz |",
        f"| outputs that reached the step limit | {fid['hit_max_steps']} of {report['cases']} |",
        f"| real-time factor (synthesis incl. vocoder, this machine) | {_ci(fid['rtf'], 'mean', _num)} |",
    ]
    if "intelligibility" in report:
        it = report["intelligibility"]
        lines += ["", "| WER (pocketsphinx) [95%] | " + " | ".join(SOURCE_NAMES[s] for s in SOURCES) + " |"]
        lines += [
            "|---" * (len(SOURCES) + 1) + "|",
            "| all cases | " + " | ".join(_ci(it[s], "wer", _pct) for s in SOURCES) + " |",
        ]
    lines += [
        "",
        "| output duration vs | Pearson r [95%] | partial r, target duration removed [95%] |",
        "|---|---|---|",
    ]
    for attr, v in report["length"].items():
        name = "real target recording" if attr == "target" else f"{attr} reference duration"
        partial = _ci(v, "partial", _num) if "partial" in v else "–"
        lines.append(f"| {name} | {_ci({**v, 'interval': v['pearson_interval']}, 'pearson', _num)} | {partial} |")
    probes = report.get("probes", {})
    if probes:
        attrs = list(next(iter(probes.values())))
        lines += ["", "| probe: embedding of → predicts | " + " | ".join(attrs) + " |", "|---" * (len(attrs) + 1) + "|"]
        for sub, res in probes.items():
            cells = [f"{_pct(res[a]['accuracy'])} (chance {_pct(res[a]['chance'])})" for a in attrs]
            lines.append(f"| {sub} sub-encoder | " + " | ".join(cells) + " |")
    if "minutes" in report:
        lines += ["", f"Evaluation took {report['minutes']} min."]
    return "\n".join(lines)
