"""Embedding distances, verify/identify and calibration, against loops and scikit-learn's ROC."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import auc
from sklearn.metrics import roc_curve as sk_roc_curve

from postprocess.embeddings import (
    distance,
    distance_matrix,
    equal_error_rate,
    identify,
    l2_normalize,
    roc_auc,
    roc_curve,
    threshold_at_far,
    verify,
)


def ref_sq_l2(a, b) -> float:
    return sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True))


def ref_cosine(a, b) -> float:
    dot = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    return 1 - dot / math.sqrt(sum(float(x) ** 2 for x in a) * sum(float(y) ** 2 for y in b))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("metric", "ref"), [("squared_l2", ref_sq_l2), ("cosine", ref_cosine)])
def test_distance_matrix_matches_loop(seed, metric, ref):
    rng = np.random.default_rng(seed)
    q, g = l2_normalize(rng.normal(size=(6, 16))), l2_normalize(rng.normal(size=(9, 16)))
    expected = [[ref(a, b) for b in g] for a in q]
    np.testing.assert_allclose(distance_matrix(q, g, metric), expected, atol=2e-6)
    assert distance(q[0], g[0], metric) == pytest.approx(expected[0][0], abs=2e-6)


def test_l2_normalize_and_zero_vector():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0, 0]])


def test_verify_threshold_is_inclusive():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # squared L2 distance exactly 2
    assert verify(a, b, 2.0).match
    assert not verify(a, b, 1.999).match
    assert verify(a, b, 2.0).distance == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(10))
def test_identify_matches_sorting(seed):
    rng = np.random.default_rng(seed)
    g = l2_normalize(rng.normal(size=(50, 8)))
    labels = [f"p{i % 17}" for i in range(50)]
    q = l2_normalize(g[rng.integers(0, 50, 5)] + rng.normal(0, 0.3, (5, 8)))
    results = identify(q, g, labels, threshold=0.5, k=3)
    for query, res in zip(q, results, strict=True):
        order = sorted(range(50), key=lambda i: (ref_sq_l2(query, g[i]), i))[:3]
        assert list(res.labels) == [labels[i] for i in order]
        np.testing.assert_allclose(res.distances, [ref_sq_l2(query, g[i]) for i in order], atol=2e-6)
        assert res.label == (labels[order[0]] if res.distances[0] <= 0.5 else "unknown")


def test_identify_edge_cases():
    g = np.eye(3, dtype=np.float32)
    # k larger than the gallery: every row, sorted.
    res = identify(g[0], g, ["a", "b", "c"], threshold=0.1, k=10)[0]
    assert res.labels == ("a", "b", "c") and res.label == "a"
    # far from everyone: unknown, but the nearest candidates are still reported
    far = identify(np.array([-1.0, 0, 0]), g, ["a", "b", "c"], threshold=0.5)[0]
    assert far.label == "unknown" and far.labels == ("b",)  # b and c tie at distance 2: gallery order wins
    # empty gallery: unknown with infinite distance; empty queries: no results
    empty = identify(g[0], np.zeros((0, 3)), [], threshold=1.0)[0]
    assert empty.label == "unknown" and empty.distance == math.inf
    assert identify(np.zeros((0, 3)), g, ["a", "b", "c"], 1.0) == []


@pytest.mark.parametrize("seed", range(10))
def test_roc_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    gen = rng.normal(0.6, 0.3, 200).round(2)  # rounding makes ties between genuine and impostor
    imp = rng.normal(1.4, 0.3, 500).round(2)
    roc = roc_curve(gen, imp)
    y = np.r_[np.ones(200), np.zeros(500)]
    far, tar, _ = sk_roc_curve(y, -np.r_[gen, imp], drop_intermediate=False)  # smaller distance = more positive
    assert roc_auc(roc) == pytest.approx(auc(far, tar), abs=1e-9)
    for t, f, r in zip(roc.thresholds, roc.far, roc.tar, strict=True):
        assert f == pytest.approx(np.mean(imp <= t)) and r == pytest.approx(np.mean(gen <= t))
    assert (np.diff(roc.far) >= 0).all() and (np.diff(roc.tar) >= 0).all()


@pytest.mark.parametrize("seed", range(10))
def test_threshold_at_far_and_eer_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    gen, imp = rng.normal(0.6, 0.3, 300), rng.normal(1.4, 0.3, 1000)
    cal = threshold_at_far(gen, imp, 0.01)
    candidates = sorted(set(gen) | set(imp))
    best = max(t for t in candidates if np.mean(imp <= t) <= 0.01)
    assert cal.threshold == pytest.approx(best)
    assert cal.far == pytest.approx(np.mean(imp <= best)) and cal.tar == pytest.approx(np.mean(gen <= best))
    eer, t_eer = equal_error_rate(gen, imp)
    gaps = [abs(np.mean(imp <= t) - np.mean(gen > t)) for t in candidates]
    assert abs(np.mean(imp <= t_eer) - np.mean(gen > t_eer)) == pytest.approx(min(gaps))
    assert eer == pytest.approx((np.mean(imp <= t_eer) + np.mean(gen > t_eer)) / 2)


def test_perfect_separation():
    cal = threshold_at_far([0.1, 0.2], [0.9, 1.0], 0.0)
    assert (cal.tar, cal.far, cal.auc, cal.eer) == (1.0, 0.0, 1.0, 0.0)


vectors = arrays(np.float32, 8, elements=st.floats(-10, 10, width=32)).filter(lambda v: np.linalg.norm(v) > 1e-2)


@settings(max_examples=100, deadline=None)
@given(vectors, vectors)
def test_distance_properties(a, b):
    for metric in ("squared_l2", "cosine"):
        assert distance(a, b, metric) == pytest.approx(distance(b, a, metric), abs=1e-4)
        assert distance(a, b, metric) >= 0
    ua, ub = l2_normalize(a), l2_normalize(b)
    assert distance(ua, ua) == pytest.approx(0, abs=1e-5)
    # for unit vectors ||a - b||^2 = 2 (1 - cos)
    assert distance(ua, ub) == pytest.approx(2 * distance(ua, ub, "cosine"), abs=1e-5)


G = np.eye(3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: distance_matrix(np.ones((1, 4)), G), r"embedding size 4 like the queries, but got 3"),
        (lambda: distance_matrix(np.ones((1, 3)), G, "l1"), r"metric must be one of"),  # unknown metric
        (lambda: distance_matrix(np.full(3, np.nan), G), r"queries must be finite"),  # NaN embedding
        (lambda: distance_matrix(np.ones((1, 1, 3)), G), r"queries must be a numeric \(N, D\)"),  # wrong rank
        (lambda: identify(G[0], G, ["a"], 1.0), r"labels must have one entry per gallery row \(3\), but got 1"),
        (lambda: identify(G[0], G, ["a", "b", "c"], 1.0, k=0), r"k must be >= 1, but got 0"),
        (lambda: roc_curve([], [1.0]), r"genuine distances must not be empty"),  # nothing to calibrate
        (lambda: roc_curve([0.1], [np.inf]), r"impostor distances must be finite"),
        (lambda: threshold_at_far([0.1], [1.0], 1.5), r"target_far must be in \[0, 1\]"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
