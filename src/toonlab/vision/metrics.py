"""Retrieval and classification metrics, per query, with bootstrap confidence intervals.

Retrieval: a similarity matrix (Q queries x G gallery items) and a boolean relevance matrix of the same shape
(several positives per query allowed). Ties are broken pessimistically: a negative scoring equal to a positive
ranks above it. Per query: the rank of the best-ranked positive (1-based), R@K = [rank <= K], and average
precision over all positives. Summaries are means over queries (median for the rank).

Classification: accuracy and macro-F1 (mean F1 over the classes present in the truth or the predictions).

Confidence intervals are percentile bootstraps over queries (10,000 resamples by default); the paired form
resamples the same queries for two systems and reports the interval of their difference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

RECALL_AT = (1, 5, 10)


def retrieval_per_query(scores: np.ndarray, relevant: np.ndarray) -> dict[str, np.ndarray]:
    """scores, relevant: (Q, G). Returns per-query arrays: rank, R@1/5/10 (0/1), ap. Every query needs a positive."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores and relevant must be equal (Q, G) matrices, got {scores.shape}, {relevant.shape}")
    if not relevant.any(1).all():
        raise ValueError("every query needs at least one relevant gallery item")
    best = np.where(relevant, scores, -np.inf).max(1, keepdims=True)  # (Q, 1) best positive score
    rank = 1 + ((scores >= best) & ~relevant).sum(1)  # negatives at or above it rank first
    order = np.lexsort((relevant, -scores), axis=-1)  # score descending; among ties, negatives first
    hits = np.take_along_axis(relevant, order, axis=1)  # (Q, G) relevance in ranked order
    cum = np.cumsum(hits, axis=1)
    positions = np.arange(1, scores.shape[1] + 1)
    ap = (hits * cum / positions).sum(1) / hits.sum(1)
    out = {"rank": rank.astype(np.float64), "ap": ap}
    for k in RECALL_AT:
        out[f"r{k}"] = (rank <= k).astype(np.float64)
    return out


def summarize_retrieval(per_query: dict[str, np.ndarray]) -> dict[str, float]:
    """R@K and mAP in percent, median rank."""
    summary = {f"r{k}": 100.0 * float(per_query[f"r{k}"].mean()) for k in RECALL_AT}
    summary["median_rank"] = float(np.median(per_query["rank"]))
    summary["map"] = 100.0 * float(per_query["ap"].mean())
    return summary


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float((np.asarray(truth) == np.asarray(predicted)).mean())


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Mean per-class F1 over the classes present in `truth` or `predicted` (scikit-learn's default)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    scores = []
    for c in np.union1d(truth, predicted):
        tp = np.sum((truth == c) & (predicted == c))
        denominator = np.sum(truth == c) + np.sum(predicted == c)
        scores.append(2.0 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _resamples(n: int, n_resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))  # (R, n) query indices


def bootstrap_ci(
    values: np.ndarray | Callable[[np.ndarray], float],
    n: int | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """Percentile interval of a mean over queries (`values`, (n,)), or of `stat(indices)` for any statistic."""
    if callable(values):
        if n is None:
            raise ValueError("give n (the number of queries) with a statistic function")
        idx = _resamples(n, n_resamples, seed)
        estimate, draws = values(np.arange(n)), np.array([values(row) for row in idx])
    else:
        values = np.asarray(values, dtype=np.float64)
        idx = _resamples(len(values), n_resamples, seed)
        estimate, draws = float(values.mean()), values[idx].mean(1)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(draws, [tail, 1.0 - tail])
    return {"estimate": float(estimate), "lo": float(lo), "hi": float(hi)}


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_resamples: int = 10_000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Interval of mean(a) - mean(b) where a[i], b[i] are two systems' scores on the same query i."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must align query by query, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n_resamples=n_resamples, seed=seed, level=level)
