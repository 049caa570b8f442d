"""identify's int8 first pass (postprocess/quantized.py) against float64 brute force: its error bound holds on every
pair, and the results (rows, order, distances, labels) equal the exact search's on random galleries, near-ties
below the int8 step, unequal norms, other sizes and many queries."""

import numpy as np
import pytest

from edgepipe.postprocess.embeddings import QUERY_CHUNK, Gallery, identify, l2_normalize
from edgepipe.postprocess.quantized import (
    GALLERY_LEVELS,
    INT8_MIN_ROWS,
    QUERY_LEVELS,
    QUERY_SHIFT,
    Int8Rows,
    _matmul_integer,
)


def brute(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) float64 squared L2 from the differences."""
    diff = queries[:, None, :].astype(np.float64) - gallery[None, :, :].astype(np.float64)
    return (diff**2).sum(-1)


def same_as_exact(queries, gallery, labels, threshold, k):
    """identify with the int8 first pass gives what the float32 first pass gives, and both match brute force."""
    got = identify(queries, Gallery(gallery, quantize=True), labels, threshold, k)
    assert got == identify(queries, Gallery(gallery, quantize=False), labels, threshold, k)
    d = brute(queries, gallery)
    for res, row in zip(got, d, strict=True):
        order = np.lexsort((np.arange(len(row)), row))[:k]
        assert list(res.indices) == order.tolist()
        np.testing.assert_allclose(res.distances, row[order], rtol=1e-12, atol=1e-12)
        assert res.label == (labels[order[0]] if row[order[0]] <= threshold else "unknown")


def test_the_kernel_sums_exactly_even_at_the_extreme_codes():
    """Every sign pattern of the largest codes (the sums a saturating int16 pair-add would clip) and random ones."""
    rng = np.random.default_rng(0)
    queries = np.concatenate([np.full((1, 64), QUERY_LEVELS), np.full((1, 64), -QUERY_LEVELS),
                              rng.choice([-QUERY_LEVELS, QUERY_LEVELS], (30, 64)),
                              rng.integers(-QUERY_LEVELS, QUERY_LEVELS + 1, (30, 64))]).astype(np.int8)
    rows = np.concatenate([np.full((64, 1), GALLERY_LEVELS), np.full((64, 1), -GALLERY_LEVELS),
                           rng.choice([-GALLERY_LEVELS, GALLERY_LEVELS], (64, 40)),
                           rng.integers(-GALLERY_LEVELS, GALLERY_LEVELS + 1, (64, 40))], axis=1).astype(np.int8)
    shifted = (queries.astype(np.int16) + QUERY_SHIFT).astype(np.uint8)
    sums = _matmul_integer()(shifted, rows) - QUERY_SHIFT * rows.sum(axis=0, dtype=np.int32)
    assert np.array_equal(sums, queries.astype(np.int64) @ rows.astype(np.int64))


@pytest.mark.parametrize("seed", range(5))
def test_the_error_bound_holds_on_every_pair(seed):
    rng = np.random.default_rng(seed)
    scale = 10.0 ** rng.uniform(-3, 3)
    gallery = (rng.normal(size=(500, 64)) * rng.uniform(0.1, 3, (500, 1)) * scale).astype(np.float32)
    queries = (rng.normal(size=(7, 64)) * scale).astype(np.float32)
    rows = Int8Rows.of(gallery)
    q_sq, g_sq = (queries.astype(np.float64) ** 2).sum(1), (gallery.astype(np.float64) ** 2).sum(1)
    d, margin = rows.distances(queries, q_sq.astype(np.float32), g_sq.astype(np.float32))
    error = np.abs(d.astype(np.float64) - brute(queries, gallery))
    float_part = 2 * 68 * np.finfo(np.float32).eps * (q_sq + g_sq.max())  # embeddings._fast_error_margin, 2 rows
    assert (error <= (margin / 2 + float_part / 2)[:, None]).all()  # one row: half of the two-row margin
    assert (error > 0).any()  # the codes really are approximate


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 5])
def test_random_unit_galleries_match_the_exact_search(seed, k):
    rng = np.random.default_rng(seed)
    gallery = l2_normalize(rng.normal(size=(3_000, 128)))
    labels = [f"p{i // 3}" for i in range(len(gallery))]
    picks = rng.integers(0, len(gallery), 4)
    queries = np.concatenate([l2_normalize(gallery[picks] + rng.normal(0, 0.05, (4, 128))),
                              l2_normalize(rng.normal(size=(2, 128)))])  # 4 enrolled people, 2 strangers
    same_as_exact(queries, gallery, labels, 0.5, k)


@pytest.mark.parametrize("seed", range(4))
def test_near_ties_below_the_int8_step_follow_the_exact_distances(seed):
    """Rows that differ from the query and from each other by far less than the int8 step (largest / 127): the
    first pass cannot order them, the margin keeps them all for the exact recomputation."""
    rng = np.random.default_rng(seed)
    center = l2_normalize(rng.normal(size=(1, 32)))[0]
    step = np.abs(center).max() / 127
    near = (center + rng.normal(0, step / 50, (12, 32))).astype(np.float32)
    far = l2_normalize(rng.normal(size=(200, 32)))
    gallery = np.concatenate([far, near, near[:2]])[rng.permutation(214)]  # two rows twice: ties by row
    query = (center + rng.normal(0, step / 50, 32)).astype(np.float32)[None]
    same_as_exact(query, gallery, [f"r{i}" for i in range(214)], 1.0, 8)


def test_other_sizes_norms_and_many_queries():
    rng = np.random.default_rng(9)
    for d in (3, 512):
        gallery = (rng.normal(size=(400, d)) * rng.uniform(0.01, 50, (400, 1))).astype(np.float32)
        gallery[7] = 0.0  # a zero row
        queries = (rng.normal(size=(QUERY_CHUNK + 6, d)) * 5).astype(np.float32)  # two chunks of queries
        queries[3] = gallery[11]  # an exact copy: distance 0
        same_as_exact(queries, gallery, [f"r{i}" for i in range(400)], 10.0, 3)
    zeros = np.zeros((5, 4), np.float32)  # every code 0, the scale 1
    same_as_exact(np.ones((1, 4), np.float32), zeros, list("abcde"), 4.0, 2)


def test_only_large_galleries_and_squared_l2_use_the_int8_copy():
    rng = np.random.default_rng(1)
    small = Gallery(rng.normal(size=(INT8_MIN_ROWS - 1, 2)))
    large = Gallery(rng.normal(size=(INT8_MIN_ROWS, 2)))
    assert small.int8 is None and large.int8 is not None and large.int8.codes_t.shape == (2, INT8_MIN_ROWS)
    assert not large.int8.codes_t.flags.writeable
    queries = rng.normal(size=(3, 2)).astype(np.float32)
    labels = [str(i) for i in range(INT8_MIN_ROWS)]
    for metric in ("squared_l2", "cosine"):  # cosine always takes the float32 pass
        exact = identify(queries, Gallery(large.embeddings, quantize=False), labels, 0.1, 2, metric)
        assert identify(queries, large, labels, 0.1, 2, metric) == exact
