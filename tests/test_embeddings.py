"""Embedding distances, verify and identify, against Python loops in float64."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgepipe.postprocess.embeddings import (
    EINSUM_MAX_QUERIES,
    QUERY_CHUNK,
    Gallery,
    distance,
    distance_matrix,
    identify,
    l2_normalize,
    verify,
)

EPS32 = float(np.finfo(np.float32).eps)


def ref_sq_l2(a, b) -> float:
    """||a - b||^2 with Python float64 sums."""
    return sum((float(x) - float(y)) ** 2 for x, y in zip(a, b, strict=True))


def ref_cosine(a, b) -> float:
    """1 - cos(a, b) with Python float64 sums, clamped to [0, 2]; a zero vector is at distance 1 (cos 0)."""
    dot = sum(float(x) * float(y) for x, y in zip(a, b, strict=True))
    na, nb = math.sqrt(sum(float(x) ** 2 for x in a)), math.sqrt(sum(float(y) ** 2 for y in b))
    return min(max(1.0 - dot / (max(na, 1e-12) * max(nb, 1e-12)), 0.0), 2.0)


REFS = {"squared_l2": ref_sq_l2, "cosine": ref_cosine}


def ref_identify(query, gallery, labels, threshold, k, metric):
    """Brute force: every gallery row's distance, sorted by (distance, row); (label, rows, distances)."""
    d = [REFS[metric](query, row) for row in gallery]
    rows = sorted(range(len(gallery)), key=lambda i: (d[i], i))[:k]
    label = labels[rows[0]] if d[rows[0]] <= threshold else "unknown"
    return label, rows, [d[i] for i in rows]


def fast_bound(q, g, metric):
    """The documented error bound of distance_matrix, per pair: (D + 4) eps (||q||^2 + ||g||^2), or (D + 4) eps."""
    if metric == "cosine":
        return (q.shape[1] + 4) * EPS32 * np.ones((len(q), len(g)))
    sq = (q.astype(np.float64) ** 2).sum(1)[:, None] + (g.astype(np.float64) ** 2).sum(1)[None, :]
    return (q.shape[1] + 4) * EPS32 * sq


def check_against_ref(results, queries, gallery, labels, threshold, k, metric):
    assert len(results) == len(queries)
    for query, res in zip(queries, results, strict=True):
        label, rows, dists = ref_identify(query, gallery, labels, threshold, k, metric)
        assert list(res.indices) == rows
        assert list(res.labels) == [labels[i] for i in rows]
        np.testing.assert_allclose(res.distances, dists, rtol=1e-12, atol=1e-15)
        assert res.label == label and res.distance == res.distances[0]


# --- distances ---


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("metric", ["squared_l2", "cosine"])
def test_distance_matrix_matches_loops_within_the_bound(seed, metric):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 40))
    scale = 10.0 ** rng.uniform(-2, 2)  # not only unit vectors
    q = (rng.normal(size=(int(rng.integers(1, 12)), d)) * scale).astype(np.float32)
    g = (rng.normal(size=(int(rng.integers(1, 30)), d)) * scale).astype(np.float32)
    g[0] = q[0]  # one identical pair: distance 0 up to rounding
    got = distance_matrix(q, g, metric)
    expected = np.array([[REFS[metric](a, b) for b in g] for a in q])
    assert got.shape == (len(q), len(g)) and got.dtype == np.float32
    assert (got >= 0).all()
    assert (np.abs(got - expected) <= fast_bound(q, g, metric)).all()
    for i, j in [(0, 0), (len(q) - 1, len(g) - 1)]:  # distance() is float64 from the differences: near exact
        assert distance(q[i], g[j], metric) == pytest.approx(expected[i, j], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("queries", [1, EINSUM_MAX_QUERIES - 1, EINSUM_MAX_QUERIES, 70])  # einsum, then matmul
def test_distance_matrix_of_128d_unit_vectors_is_accurate_near_zero(queries):
    rng = np.random.default_rng(queries)
    g = l2_normalize(rng.normal(size=(300, 128)))
    q = l2_normalize(g[:queries] + rng.normal(0, 1e-3, (queries, 128)))  # nearly coincide: cancellation
    got = distance_matrix(q, g)
    expected = ((q[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)  # (Q, G) from the differences
    assert np.abs(got - expected).max() <= 2e-5  # the documented ~(D + 4) eps * 2 for unit vectors
    assert np.abs(distance_matrix(g, g).diagonal()).max() <= 2e-5  # identical rows


def test_distance_matrix_empty_and_unchanged_inputs():
    q, g = np.ones((2, 3), np.float64), np.zeros((0, 3), np.float32)
    assert distance_matrix(q, g).shape == (2, 0)
    assert distance_matrix(g, q, "cosine").shape == (0, 2)
    before = q.copy()
    distance_matrix(q, q)
    np.testing.assert_array_equal(q, before)


@pytest.mark.parametrize(
    ("a", "b", "metric", "expected"),
    [
        ([1, 0], [0, 1], "squared_l2", 2.0),  # orthogonal unit vectors
        ([1, 0], [0, 1], "cosine", 1.0),
        ([1, 0], [-1, 0], "cosine", 2.0),  # opposite
        ([3, 4], [3, 4], "squared_l2", 0.0),  # identical
        ([3, 4], [6, 8], "cosine", 0.0),  # same direction, other length
        ([0, 0], [1, 2], "cosine", 1.0),  # a zero vector: cos taken as 0
        ([0, 0], [0, 0], "squared_l2", 0.0),
        ([1.5], [-2.5], "squared_l2", 16.0),  # D = 1
    ],
)
def test_distance_hand_made(a, b, metric, expected):
    assert distance(np.array(a), np.array(b), metric) == pytest.approx(expected, abs=1e-15)
    assert distance_matrix(np.array([a]), np.array([b]), metric)[0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_l2_normalize_matches_loop(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(6, 5)) * 10.0 ** rng.uniform(-3, 3)
    x[2] = 0  # zero vector stays zero
    before = x.copy()
    got = l2_normalize(x)
    np.testing.assert_array_equal(x, before)
    assert got.dtype == np.float32 and got.shape == x.shape
    for row, out in zip(x, got, strict=True):
        norm = math.sqrt(sum(float(v) ** 2 for v in row))
        np.testing.assert_allclose(out, [v / norm for v in row] if norm else row, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(l2_normalize(x, axis=0), x / np.linalg.norm(x, axis=0), rtol=1e-6)


def test_l2_normalize_large_values_and_integers():
    np.testing.assert_allclose(l2_normalize(np.array([3e30, 4e30], np.float32)), [0.6, 0.8])  # no overflow
    np.testing.assert_allclose(l2_normalize(np.array([[0, 5], [-3, 4]])), [[0, 1], [-0.6, 0.8]])


vectors = arrays(np.float32, 8, elements=st.floats(-100, 100, width=32))


@settings(max_examples=200, deadline=None)
@given(vectors, vectors)
def test_distance_properties(a, b):
    for metric in ("squared_l2", "cosine"):
        assert distance(a, b, metric) == distance(b, a, metric)  # symmetric
        assert distance(a, b, metric) >= 0
        both = distance_matrix(np.stack([a, b]), np.stack([a, b]), metric)
        assert (np.abs(both - both.T) <= fast_bound(np.stack([a, b]), np.stack([a, b]), metric)).all()
    ua, ub = l2_normalize(a), l2_normalize(b)
    assert distance(ua, ua) == 0  # identical normalized vectors
    unit_a, unit_b = np.linalg.norm(a) > 1e-6, np.linalg.norm(b) > 1e-6  # else l2_normalize's eps decides
    if unit_a:
        assert distance(ua, ua, "cosine") == pytest.approx(0, abs=1e-15)
    if not a.any():
        assert distance(ua, ua, "cosine") == 1.0  # a zero vector: cos taken as 0
    if unit_a and unit_b:
        # unit vectors: ||a - b||^2 = 2 - 2 cos = 2 d_cos (up to the float32 rounding of the normalized vectors)
        assert distance(ua, ub) == pytest.approx(2 * distance(ua, ub, "cosine"), abs=1e-6)


# --- verify ---


@pytest.mark.parametrize(
    ("a", "b", "threshold", "metric", "match"),
    [
        ([1, 0], [0, 1], 2.0, "squared_l2", True),  # distance exactly at the threshold: accepted
        ([1, 0], [0, 1], np.nextafter(2.0, 0), "squared_l2", False),  # just below the distance: rejected
        ([1, 0], [0, 1], 1.0, "cosine", True),  # cosine distance 1 at threshold 1
        ([1, 0], [0, 1], 0.999, "cosine", False),
        ([0.6, 0.8], [0.6, 0.8], 0.0, "squared_l2", True),  # identical embeddings match even at threshold 0
        ([0.6, 0.8], [0.8, 0.6], 0.0, "squared_l2", False),
    ],
)
def test_verify_threshold_is_inclusive(a, b, threshold, metric, match):
    res = verify(np.array(a), np.array(b), threshold, metric)
    assert res.match is match
    assert res.distance == pytest.approx(REFS[metric](a, b), abs=1e-15)
    assert (res.threshold, res.metric) == (threshold, metric)


@pytest.mark.parametrize("seed", range(10))
def test_verify_matches_loop(seed):
    rng = np.random.default_rng(seed)
    a, b = l2_normalize(rng.normal(size=(2, 16)))
    d = ref_sq_l2(a, b)
    for threshold in (d * 0.999, d * 1.001, float(rng.uniform(0, 4))):
        assert verify(a, b, threshold).match == (d <= threshold)


# --- identify ---


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("metric", ["squared_l2", "cosine"])
def test_identify_matches_sorting(seed, metric):
    rng = np.random.default_rng(seed)
    g_rows, d = int(rng.integers(1, 60)), int(rng.integers(2, 20))
    gallery = (l2_normalize(rng.normal(size=(g_rows, d))) * rng.uniform(0.5, 2.0, (g_rows, 1))).astype(np.float32)
    labels = [f"p{i % 7}" for i in range(g_rows)]  # several rows per person
    queries = (gallery[rng.integers(0, g_rows, 5)] + rng.normal(0, 0.3, (5, d))).astype(np.float32)
    k = int(rng.integers(1, g_rows + 3))  # sometimes above G
    dists = np.array([[REFS[metric](a, b) for b in gallery] for a in queries])
    best = np.sort(dists.min(1))
    threshold = float(best[1] + best[2]) / 2  # 2 queries known, 3 unknown (at-threshold ties: hand-made cases)
    results = identify(queries, gallery, labels, threshold, k=k, metric=metric)
    check_against_ref(results, queries, gallery, labels, threshold, k, metric)
    assert identify(queries, Gallery(gallery), labels, threshold, k, metric) == results  # enrolled: same results


@pytest.mark.parametrize("metric", ["squared_l2", "cosine"])
def test_identify_many_queries_in_chunks(metric):
    # more than QUERY_CHUNK queries: several blocks, the matmul path, results in query order
    rng = np.random.default_rng(1)
    gallery = l2_normalize(rng.normal(size=(40, 6)))
    labels = [f"p{i}" for i in range(40)]
    queries = rng.normal(size=(QUERY_CHUNK + 9, 6)).astype(np.float32)
    results = identify(queries, gallery, labels, 0.5, k=3, metric=metric)
    check_against_ref(results, queries, gallery, labels, 0.5, 3, metric)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize(("metric", "center_norm"), [("squared_l2", 100.0), ("cosine", 1.0)])
def test_identify_near_ties_follow_exact_distances(seed, k, metric, center_norm):
    # A tight cluster: rows 1e-4 apart around a center of norm 100 (squared L2: ||q||^2 + ||g||^2 - 2 q.g cancels
    # 1e4 down to 1e-8) or nearly parallel unit rows (cosine distances about 1e-8 below float32's resolution of 1).
    # The float32 ranking is noise there; the exact recomputation of every candidate within the error bound must
    # still give the float64 brute force's order, and exact duplicates must tie by gallery row.
    rng = np.random.default_rng(seed)
    center = l2_normalize(rng.normal(size=32)) * center_norm
    rows = (center + rng.normal(0, 1e-4, (12, 32))).astype(np.float32)
    gallery = np.concatenate([rows, rows[:3]])[rng.permutation(15)]  # three rows twice
    query = (center + rng.normal(0, 1e-4, 32)).astype(np.float32)[None]
    labels = [f"r{i}" for i in range(15)]
    results = identify(query, gallery, labels, 1.0, k=k, metric=metric)
    check_against_ref(results, query, gallery, labels, 1.0, k, metric)


def test_identify_large_gallery_against_float64_brute_force():
    rng = np.random.default_rng(3)
    gallery = l2_normalize(rng.normal(size=(20_000, 128)))
    labels = [f"p{i // 4}" for i in range(20_000)]
    picks = rng.integers(0, 20_000, 3)
    queries = l2_normalize(gallery[picks] + rng.normal(0, 0.02, (3, 128)))
    results = identify(queries, Gallery(gallery), labels, threshold=0.5, k=5)
    exact = ((queries[:, None, :].astype(np.float64) - gallery[None, :, :]) ** 2).sum(-1)  # (3, G)
    for res, row, pick in zip(results, exact, picks, strict=True):
        order = np.lexsort((np.arange(20_000), row))[:5]
        assert list(res.indices) == order.tolist() and res.indices[0] == pick
        np.testing.assert_allclose(res.distances, row[order], rtol=1e-12)
        assert res.label == labels[pick]


E3 = np.eye(3, dtype=np.float32)


@pytest.mark.parametrize(
    ("query", "gallery", "labels", "threshold", "k", "label", "rows"),
    [
        ([1, 0, 0], E3, "abc", 0.1, 10, "a", [0, 1, 2]),  # k above the gallery: every row, sorted
        ([-1, 0, 0], E3, "abc", 0.5, 1, "unknown", [1]),  # far from all: unknown; b and c tie at 2, row order wins
        ([-1, 0, 0], E3, "abc", 2.0, 2, "b", [1, 2]),  # best distance exactly at the threshold: accepted
        ([0, 1, 0], E3[[1, 1, 0]], "xyz", 0.0, 3, "x", [0, 1, 2]),  # identical rows: distance 0, tie by row
        ([0, 0, 1], E3[:1], "a", 1.0, 1, "unknown", [0]),  # one-row gallery, distance 2 above the threshold
        ([0, 0, 1], E3[:1], "a", 2.0, 3, "a", [0]),  # one-row gallery, at the threshold, k > G
    ],
)
def test_identify_hand_made(query, gallery, labels, threshold, k, label, rows):
    res = identify(np.array([query], np.float32), gallery, list(labels), threshold, k)[0]
    assert res.label == label and list(res.indices) == rows
    assert res.labels == tuple(labels[i] for i in rows)
    assert list(res.distances) == [ref_sq_l2(query, gallery[i]) for i in rows]


def test_identify_empty_gallery_and_empty_queries():
    # empty gallery: every query is unknown, at distance inf, with no candidates
    for gallery in (np.zeros((0, 3)), Gallery(np.zeros((0, 3)))):
        res = identify(E3[:2], gallery, [], threshold=1.0, k=3)
        assert [(r.label, r.distance, r.labels, r.distances, r.indices) for r in res] == [
            ("unknown", math.inf, (), (), ())
        ] * 2
    # empty queries: no results
    assert identify(np.zeros((0, 3)), E3, ["a", "b", "c"], 1.0) == []
    assert identify(np.zeros((0, 3)), np.zeros((0, 3)), [], 1.0) == []


def test_gallery_is_a_read_only_copy():
    x = np.eye(2)
    g = Gallery(x)
    x[0, 0] = 5.0  # the caller's array stays theirs and writable; the gallery does not see the change
    assert g.embeddings[0, 0] == 1.0 and g.embeddings.dtype == np.float32 and not g.embeddings.flags.writeable
    np.testing.assert_array_equal(g.sq_norms, [1.0, 1.0])
    assert len(g) == 2 and g.max_sq_norm == 1.0


# --- bad input ---

G3 = np.eye(3)
LABELS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: distance_matrix(np.ones((1, 4)), G3), r"gallery must have embedding size D = 4 like queries, but got"),
        (lambda: distance_matrix(np.ones((1, 3)), G3, "l1"), r"metric must be one of .*, but got 'l1'"),  # metric
        (lambda: distance_matrix(np.full((1, 3), np.nan), G3), r"queries must be finite, but got NaN or inf"),
        (lambda: distance_matrix(np.ones((1, 3)), np.full((2, 3), np.inf)), r"gallery must be finite"),  # inf
        (lambda: distance_matrix(np.ones(3), G3), r"queries must have shape \(N, D\) with D >= 1, but got shape \(3,"),
        (lambda: distance_matrix(np.ones((1, 1, 3)), G3), r"queries must have shape \(N, D\).*\(1, 1, 3\)"),  # 3-D
        (lambda: distance_matrix(np.ones((1, 0)), G3), r"queries must have shape \(N, D\) with D >= 1"),  # D = 0
        (lambda: distance_matrix(np.array([["a"]]), G3), r"queries must be a float or integer array, but got dtype"),
        (lambda: distance_matrix(np.ones((1, 3), complex), G3), r"queries must be a float or integer array"),
        (lambda: distance_matrix(np.full((1, 3), 1e20), G3), r"queries must have norms below 1.8e19"),  # overflow
        (lambda: distance(np.ones(3), np.ones(2)), r"b must have embedding size D = 3 like a, but got 2"),
        (lambda: distance(np.ones((1, 3)), np.ones(3)), r"a must have shape \(D,\) with D >= 1, but got shape"),
        (lambda: distance(np.ones(3), np.array([1, np.inf, 0])), r"b must be finite"),
        (lambda: verify(np.ones(3), np.ones(3), -0.1), r"threshold must be a finite number >= 0, but got -0.1"),
        (lambda: verify(np.ones(3), np.ones(3), np.nan), r"threshold must be a finite number >= 0, but got nan"),
        (lambda: verify(np.ones(3), np.ones(3), "1"), r"threshold must be a finite number >= 0, but got '1'"),
        (lambda: verify(np.ones(3), np.ones(3), 1.0, "dot"), r"metric must be one of"),
        (lambda: identify(G3[:1], G3, ["a"], 1.0), r"labels must have one entry per gallery row \(3\), but got 1"),
        (lambda: identify(G3[:1], G3, LABELS, 1.0, k=0), r"k must be an integer >= 1, but got 0"),
        (lambda: identify(G3[:1], G3, LABELS, 1.0, k=1.5), r"k must be an integer >= 1, but got 1.5"),
        (lambda: identify(G3[:1], G3, LABELS, math.inf), r"threshold must be a finite number >= 0, but got inf"),
        (lambda: identify(G3[0], G3, LABELS, 1.0), r"queries must have shape \(N, D\)"),  # one (D,) query
        (lambda: identify(np.ones((1, 2)), G3, LABELS, 1.0), r"gallery must have embedding size D = 2 like queries"),
        (lambda: identify(G3[:1], np.zeros((0, 2)), [], 1.0), r"gallery must have embedding size D = 3 like"),
        (lambda: identify(G3[:1], np.zeros(0), [], 1.0), r"gallery must have shape \(N, D\)"),  # (0,) gallery
        (lambda: Gallery(np.array([[1.0, np.nan]])), r"gallery must be finite"),
        (lambda: l2_normalize(np.array([1.0, np.nan])), r"x must be finite, but got NaN or inf"),
        (lambda: l2_normalize(np.ones(3), eps=0.0), r"eps must be > 0, but got 0.0"),
        (lambda: l2_normalize(np.array(["a"])), r"x must be a float or integer array"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
