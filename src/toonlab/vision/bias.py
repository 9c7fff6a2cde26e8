"""The cartoon-bias table (`toonlab vision bias --data OUT --out DIR`).

Do natural-image/text towers under-serve cartoons, and does tuning them on cartoons fix it? Rows share the data,
the heads and the step budget:
1. chance (random scores / random class guesses, through the same metric code);
2. frozen natural towers (ImageNet EfficientNet-Lite0 + all-MiniLM-L6-v2), trained projections only (the
   offline stand-in for zero-shot CLIP: no aligned CLIP weights ship in a package);
3. row 2 + a temporal transformer;
4. partial fine-tune of the natural towers (last 2 Lite0 stages + head, last 2 MiniLM layers) + temporal transformer;
5. the same recipe from scratch (default: small CNN + byte transformer; `scratch-natural-seq` is the natural
   architectures with random weights, for GPU budgets);
6. VideoMamba from scratch as the video side + frozen MiniLM with a trained projection (`mamba-frozen-text`,
   VideoMamba-Ti; `mamba-micro-frozen-text` for CPU budgets). More rows plug in through `rows`.
Tasks: retrieval (text->video, video->text) and classification (label columns, plus the playback-order control).
Per row and task the learning rate is chosen on val (seed 0, by t2v R@1 or mean label accuracy), then every seed
trains at it and is scored on test. Intervals: percentile bootstrap over test queries of the per-query values
averaged over seeds; contrasts are paired (same queries), per seed and pooled.

Pre-registered primary contrast: row 4 minus row 2, text->video R@1 on test. Temporal-order control: playback
order accuracy (forward vs reversed) of the rows that model time (3, 6) minus frame pooling (row 2), which cannot
exceed chance by construction; a model that sees time should beat it. Everything is written to
`DIR/bias.json` and `DIR/bias.md`; run folders under `DIR/runs/` make the command resumable (a finished run is
not retrained, an unfinished one resumes from its checkpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from toonlab.vision.data import ShotSet, load_shots
from toonlab.vision.evaluate import evaluate_run
from toonlab.vision.metrics import bootstrap_ci, paired_bootstrap
from toonlab.vision.models import get_config
from toonlab.vision.tasks import ORDER, retrieval_metrics
from toonlab.vision.train import TrainConfig, read_checkpoint, train

DEFAULT_ROWS: dict[str, str | None] = {
    "1 chance": None,
    "2 frozen natural towers, trained projections": "frozen-mean",
    "3 row 2 + temporal transformer": "frozen-seq",
    "4 partial fine-tune on cartoons": "partial-seq",
    "5 same recipe from scratch": "scratch-seq",
    "6 VideoMamba from scratch + frozen MiniLM": "mamba-frozen-text",
}
TEMPORAL_ROWS = ("3 row 2 + temporal transformer", "6 VideoMamba from scratch + frozen MiniLM")
POOLING_ROW = "2 frozen natural towers, trained projections"
PRIMARY = ("4 partial fine-tune on cartoons", POOLING_ROW, "t2v", "r1")
ORDER_CONTROL = (
    ("3 row 2 + temporal transformer", POOLING_ROW),
    ("6 VideoMamba from scratch + frozen MiniLM", POOLING_ROW),
)


@dataclass(frozen=True)
class BiasConfig:
    rows: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_ROWS))
    seeds: tuple[int, ...] = (0, 1, 2)
    lrs: tuple[float, ...] = (1e-3, 3e-4)
    steps: int = 300
    batch_size: int = 64
    n_frames: int = 8
    size: int = 112
    labels: tuple[str, ...] = ("action", "kind")
    tasks: tuple[str, ...] = ("retrieval", "classify")
    caption_column: str = "caption"
    limit: int | None = None
    n_resamples: int = 10_000


def table_rows(scratch: str = "scratch-seq", videomamba: str | None = "mamba-frozen-text") -> dict[str, str | None]:
    """The default rows with the configs of row 5 and row 6 chosen (``videomamba`` None or "none" drops row 6)."""
    rows = dict(DEFAULT_ROWS)
    rows[next(r for r in rows if r.startswith("5 "))] = scratch
    row6 = next(r for r in rows if r.startswith("6 "))
    if videomamba in (None, "none"):
        del rows[row6]
    else:
        rows[row6] = videomamba
    return rows


def _run(data, run_dir: Path, config_name: str, tc: TrainConfig, bc: BiasConfig, device, shots, cache, log) -> dict:
    model_config = replace(get_config(config_name), n_frames=bc.n_frames, size=bc.size)
    done = (run_dir / "checkpoint.pt").exists() and read_checkpoint(run_dir)["step"] >= tc.steps
    if not done:
        log(f"train {run_dir.relative_to(run_dir.parents[2])}")
        train(data, run_dir, model_config, tc, device, cache, shots={"train": shots["train"], "val": shots["val"]})
    val = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in val if r.get("split") == "val"][-1]


def _val_score(task: str, metrics: dict, labels: tuple[str, ...]) -> float:
    return metrics["t2v_r1"] if task == "retrieval" else float(np.mean([metrics[f"{lb}_acc"] for lb in labels]))


def _test(run_dir: Path, data, device, shots, cache) -> dict[str, np.ndarray]:
    npz = run_dir / "eval-test.npz"
    if not npz.exists():
        evaluate_run(run_dir, data, "test", device, cache, shots=shots["test"])
    with np.load(npz) as values:
        return {k: values[k] for k in values.files}


def _chance(shots: ShotSet, train: ShotSet, labels: tuple[str, ...], seed: int) -> dict[str, np.ndarray]:
    """Per-query values of random scores and uniformly random guesses over the train classes."""
    rng = np.random.default_rng(1000 + seed)
    captions, ids = shots.caption_ids()
    _, per_query = retrieval_metrics(rng.random((len(captions), len(shots))), ids.numpy())
    out = {f"{d}/{k}": v for d, values in per_query.items() for k, v in values.items()}
    for label in labels:
        classes = sorted({v for v in train.labels[label] if v is not None})
        truth = np.array([classes.index(v) if v in classes else -100 for v in shots.labels[label]])
        out[f"{label}/truth"], out[f"{label}/pred"] = truth, rng.integers(0, len(classes), len(truth))
    out[f"{ORDER}/truth"] = np.repeat([0, 1], len(shots))
    out[f"{ORDER}/pred"] = rng.integers(0, 2, 2 * len(shots))
    return out


def _per_query_scores(values: dict[str, np.ndarray], labels: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Metric name -> per-query value (0/1 hits, AP, correct guesses), the quantities the table averages."""
    scores = {
        f"{d}_{k}": values[f"{d}/{k}"]
        for d in ("t2v", "v2t")
        for k in ("r1", "r5", "r10", "ap")
        if f"{d}/{k}" in values
    }
    for label in (*labels, ORDER):
        if f"{label}/truth" in values:
            scores[f"{label}_acc"] = (values[f"{label}/truth"] == values[f"{label}/pred"]).astype(float)
    return scores


def _row_task(data, out, row_config: str, task: str, bc: BiasConfig, device, shots, cache, log):
    """Choose the learning rate on val (first seed), train every seed at it; (lr, per-seed test scores)."""
    base = TrainConfig(
        task=task,
        steps=bc.steps,
        batch_size=bc.batch_size,
        eval_every=bc.steps,
        caption_column=bc.caption_column,
        labels=bc.labels,
        limit=bc.limit,
    )
    slug = out / "runs" / row_config / task
    scores = {}
    for lr in bc.lrs:
        tc = replace(base, lr=lr, seed=bc.seeds[0])
        val = _run(data, slug / f"lr{lr:g}-s{tc.seed}", row_config, tc, bc, device, shots, cache, log)
        scores[lr] = _val_score(task, val, bc.labels)
    best = max(scores, key=scores.get)
    per_seed = []
    for seed in bc.seeds:
        run_dir = slug / f"lr{best:g}-s{seed}"
        _run(data, run_dir, row_config, replace(base, lr=best, seed=seed), bc, device, shots, cache, log)
        per_seed.append(_per_query_scores(_test(run_dir, data, device, shots, cache), bc.labels))
    return best, per_seed


def _is_retrieval(metric: str) -> bool:
    return metric.startswith(("t2v_", "v2t_"))


def run_bias(
    data: Path | str, out: Path | str, bc: BiasConfig, device: str = "cpu", log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train and score every row, task by task (all rows' retrieval first); writes and returns the table."""
    data, out = Path(data), Path(out)
    cache = out / "cache"
    shots = {
        s: load_shots(data, s, bc.n_frames, bc.size, bc.caption_column, bc.labels, "hold", cache, bc.limit)
        for s in ("train", "val", "test")
    }
    log(f"shots: train {len(shots['train'])}, val {len(shots['val'])}, test {len(shots['test'])}")
    per_seed: dict[str, list[dict[str, np.ndarray]]] = {row: [{} for _ in bc.seeds] for row in bc.rows}
    chosen: dict[str, dict[str, float]] = {row: {} for row, name in bc.rows.items() if name is not None}
    chance_rows = [r for r, name in bc.rows.items() if name is None]
    # the primary contrast's rows train first (the partial row's cache then also yields the frozen features)
    first = [r for r in PRIMARY[:2] if r in bc.rows]
    order = first + [r for r in bc.rows if r not in first and r not in chance_rows]
    for task in bc.tasks:
        for row in chance_rows:
            for merged, seed in zip(per_seed[row], bc.seeds, strict=True):
                chance = _per_query_scores(_chance(shots["test"], shots["train"], bc.labels, seed), bc.labels)
                merged.update({k: v for k, v in chance.items() if _is_retrieval(k) == (task == "retrieval")})
        for row in order:
            config_name = bc.rows[row]
            chosen[row][task], scores = _row_task(data, out, config_name, task, bc, device, shots, cache, log)
            for merged, values in zip(per_seed[row], scores, strict=True):
                merged.update(values)
            _write(out, summarize(per_seed, bc, chosen), shots)  # the rows so far, should a later one be stopped
    return _write(out, summarize(per_seed, bc, chosen), shots)


def _write(out: Path, result: dict[str, Any], shots: dict[str, ShotSet]) -> dict[str, Any]:
    result["shots"] = {s: len(v) for s, v in shots.items()}
    result["test_queries"] = {"t2v": len(shots["test"].caption_ids()[0]), "v2t": len(shots["test"])}
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("bias.json", json.dumps(result, indent=2)), ("bias.md", to_markdown(result))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)
    return result


def summarize(per_seed: dict[str, list[dict[str, np.ndarray]]], bc: BiasConfig, chosen: dict) -> dict[str, Any]:
    """Per row: each metric's mean over seeds (in %) with a bootstrap interval over queries; the contrasts."""
    table = {}
    for row, seeds in per_seed.items():
        if not seeds[0]:
            continue  # not trained yet
        table[row] = {}
        for metric in seeds[0]:
            pooled = np.mean([s[metric] for s in seeds], axis=0)
            ci = bootstrap_ci(pooled, n_resamples=bc.n_resamples)
            table[row][metric] = {k: 100.0 * v for k, v in ci.items()}
            table[row][metric]["seeds"] = [100.0 * float(s[metric].mean()) for s in seeds]
    high, low, direction, k = PRIMARY
    primary = _contrast(per_seed, high, low, f"{direction}_{k}", bc.n_resamples)
    order = [_contrast(per_seed, a, b, f"{ORDER}_acc", bc.n_resamples) for a, b in ORDER_CONTROL]
    result = {"config": {**asdict(bc), "rows": bc.rows}, "chosen_lr": chosen, "table": table, "primary": primary}
    result["order_control"] = [c for c in order if c is not None]
    return result


def _contrast(per_seed: dict, high: str, low: str, metric: str, n_resamples: int) -> dict | None:
    """Row `high` minus row `low` on `metric`: paired bootstrap per seed and with seeds pooled (None if absent)."""
    if high not in per_seed or low not in per_seed or metric not in per_seed[high][0] or metric not in per_seed[low][0]:
        return None
    a, b = per_seed[high], per_seed[low]
    each = [
        paired_bootstrap(x[metric], y[metric], n_resamples, seed=i) for i, (x, y) in enumerate(zip(a, b, strict=True))
    ]
    pooled = paired_bootstrap(np.mean([x[metric] for x in a], 0), np.mean([y[metric] for y in b], 0), n_resamples)
    return {
        "contrast": f"{high} minus {low}, {metric}",
        "pooled": {key: 100.0 * v for key, v in pooled.items()},
        "per_seed": [{key: 100.0 * v for key, v in e.items()} for e in each],
        "excludes_zero_in_every_seed": all(e["lo"] > 0 or e["hi"] < 0 for e in each),
    }


COLUMNS = [
    ("t2v_r1", "t2v R@1"),
    ("t2v_r5", "t2v R@5"),
    ("t2v_ap", "t2v mAP"),
    ("v2t_r1", "v2t R@1"),
    ("v2t_ap", "v2t mAP"),
    ("action_acc", "action acc"),
    ("kind_acc", "kind acc"),
    (f"{ORDER}_acc", "order acc"),
]


def to_markdown(result: dict[str, Any]) -> str:
    """The table as markdown: mean over seeds [95% interval] per cell, then the primary contrast."""
    present = [(k, name) for k, name in COLUMNS if any(k in cells for cells in result["table"].values())]
    lines = ["| row | " + " | ".join(name for _, name in present) + " |", "|---" * (len(present) + 1) + "|"]
    for row, cells in result["table"].items():
        values = [
            f"{cells[k]['estimate']:.1f} [{cells[k]['lo']:.1f}, {cells[k]['hi']:.1f}]" if k in cells else "-"
            for k, _ in present
        ]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    primary = result.get("primary")
    if primary:
        lines += ["", f"Primary contrast ({primary['contrast']}): {_contrast_text(primary)}."]
    for control in result.get("order_control", []):
        lines += ["", f"Temporal-order control ({control['contrast']}): {_contrast_text(control)}."]
    chosen = "; ".join(
        f"{row.split(' ')[0]}: " + ", ".join(f"{t} {lr:g}" for t, lr in lrs.items())
        for row, lrs in result["chosen_lr"].items()
        if lrs
    )
    if chosen:
        lines += ["", f"Learning rates chosen on val (rows {chosen})."]
    return "\n".join(lines) + "\n"


def _contrast_text(c: dict) -> str:
    p = c["pooled"]
    seeds = ", ".join(f"{e['estimate']:+.1f} [{e['lo']:+.1f}, {e['hi']:+.1f}]" for e in c["per_seed"])
    return (
        f"{p['estimate']:+.1f} points, 95% paired bootstrap [{p['lo']:+.1f}, {p['hi']:+.1f}] (seeds pooled); "
        f"per seed: {seeds}; interval excludes 0 in every seed: {c['excludes_zero_in_every_seed']}"
    )
