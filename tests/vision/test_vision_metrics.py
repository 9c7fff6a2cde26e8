"""Retrieval and classification metrics against brute-force definitions; bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from toonlab.vision.metrics import (
    accuracy,
    bootstrap_ci,
    macro_f1,
    paired_bootstrap,
    retrieval_per_query,
    summarize_retrieval,
)


def _brute(scores, relevant):
    """Per query, by explicit ranking: ties put negatives first."""
    ranks, aps = [], []
    for s, r in zip(scores, relevant, strict=True):
        order = sorted(range(len(s)), key=lambda g: (-s[g], bool(r[g])))
        hits = [bool(r[g]) for g in order]
        ranks.append(hits.index(True) + 1)
        found, precisions = 0, []
        for position, hit in enumerate(hits, 1):
            if hit:
                found += 1
                precisions.append(found / position)
        aps.append(np.mean(precisions))
    return np.array(ranks), np.array(aps)


@pytest.mark.parametrize("seed", range(5))
def test_retrieval_matches_brute_force_with_ties_and_multiple_positives(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 4, size=(30, 12)).astype(float)  # many ties
    relevant = rng.random((30, 12)) < 0.2
    relevant[np.arange(30), rng.integers(0, 12, 30)] = True
    per_query = retrieval_per_query(scores, relevant)
    ranks, aps = _brute(scores, relevant)
    np.testing.assert_array_equal(per_query["rank"], ranks)
    np.testing.assert_allclose(per_query["ap"], aps)
    for k in (1, 5, 10):
        np.testing.assert_array_equal(per_query[f"r{k}"], ranks <= k)
    summary = summarize_retrieval(per_query)
    assert summary["median_rank"] == np.median(ranks) and summary["r1"] == pytest.approx(100 * np.mean(ranks == 1))


def test_all_tied_scores_rank_pessimistically():
    per_query = retrieval_per_query(np.zeros((1, 5)), np.array([[False, True, False, False, False]]))
    assert per_query["rank"][0] == 5 and per_query["ap"][0] == pytest.approx(0.2)


def test_a_query_without_positives_is_an_error():
    with pytest.raises(ValueError, match="relevant"):
        retrieval_per_query(np.zeros((2, 3)), np.array([[True, False, False], [False] * 3]))


def test_accuracy_and_macro_f1_match_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 5, 200), rng.integers(0, 6, 200)
    assert accuracy(truth, pred) == pytest.approx(metrics.accuracy_score(truth, pred))
    assert macro_f1(truth, pred) == pytest.approx(metrics.f1_score(truth, pred, average="macro"))


def test_bootstrap_interval_covers_the_mean_and_paired_difference_is_tighter():
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.4).astype(float)
    b = np.where(rng.random(400) < 0.9, a, 1 - a)  # b mostly agrees with a query by query
    ci = bootstrap_ci(a, n_resamples=2000)
    assert ci["lo"] < a.mean() < ci["hi"] and ci["estimate"] == pytest.approx(a.mean())
    paired = paired_bootstrap(a, b, n_resamples=2000)
    unpaired_width = bootstrap_ci(a, n_resamples=2000)["hi"] - bootstrap_ci(a, n_resamples=2000)["lo"]
    assert paired["estimate"] == pytest.approx(a.mean() - b.mean())
    assert paired["hi"] - paired["lo"] < unpaired_width
    f1 = bootstrap_ci(lambda idx: macro_f1(a[idx], b[idx]), n=400, n_resamples=200)
    assert f1["lo"] <= f1["estimate"] <= f1["hi"]
