"""Anchor boxes: k-means with 1 - IoU against planted clusters and brute force; target assignment against loops."""

import math

import numpy as np
import pytest

from postprocess.anchors import assign_targets, kmeans_anchors, shape_iou


def ref_shape_iou(a, b) -> float:
    inter = min(a[0], b[0]) * min(a[1], b[1])
    return inter / (a[0] * a[1] + b[0] * b[1] - inter)


def test_shape_iou_matches_loop():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 50, (20, 2)), rng.uniform(1, 50, (7, 2))
    expected = [[ref_shape_iou(x, y) for y in b] for x in a]
    np.testing.assert_allclose(shape_iou(a, b), expected, rtol=1e-6)


def planted(rng, centers, per=60, spread=0.05):
    return np.concatenate([c * np.exp(rng.normal(0, spread, (per, 2))) for c in centers])


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_recovers_planted_clusters(seed):
    rng = np.random.default_rng(seed)
    centers = np.array([[10, 12], [40, 20], [25, 70], [120, 110]], dtype=float)
    result = kmeans_anchors(planted(rng, centers), 4, seed=seed)
    expected = centers[np.argsort(centers.prod(1))]
    np.testing.assert_allclose(result.anchors, expected, rtol=0.05)
    assert result.anchors.dtype == np.float32
    assert (np.diff(result.anchors.prod(1)) > 0).all()  # sorted by area
    assert result.mean_iou > 0.85


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_beats_random_anchors_and_reports_its_iou(seed):
    rng = np.random.default_rng(seed)
    wh = rng.uniform(5, 200, (300, 2))
    result = kmeans_anchors(wh, 5, seed=seed)
    best = [max(ref_shape_iou(x, a) for a in result.anchors) for x in wh]
    assert result.mean_iou == pytest.approx(np.mean(best), rel=1e-5)
    assert result.assignments.tolist() == [
        max(range(5), key=lambda j: ref_shape_iou(x, result.anchors[j])) for x in wh
    ]
    for trial in range(5):  # k-means lands above anchors picked at random from the data
        random_anchors = wh[np.random.default_rng(100 + trial).choice(300, 5, replace=False)]
        assert result.mean_iou >= np.mean([max(ref_shape_iou(x, a) for a in random_anchors) for x in wh])


def test_kmeans_is_deterministic_with_a_seed():
    wh = np.random.default_rng(3).uniform(5, 200, (200, 2))
    a, b = kmeans_anchors(wh, 5, seed=7), kmeans_anchors(wh, 5, seed=7)
    np.testing.assert_array_equal(a.anchors, b.anchors)


@pytest.mark.parametrize("units", ["grid", "pixels"])
@pytest.mark.parametrize("seed", range(5))
def test_assign_targets_matches_loop(units, seed):
    rng = np.random.default_rng(seed)
    size, s = (256, 320), 8  # non-square input: cells are 32 x 40 px
    xy = rng.uniform(0, 200, (30, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 120, (30, 2))], 1)
    anchors = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0]]) * (1 if units == "grid" else 40)
    t = assign_targets(boxes, anchors, s, size, units)
    cell_w, cell_h = 320 / s, 256 / s
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        cx, cy = (x1 + x2) / 2 / cell_w, (y1 + y2) / 2 / cell_h
        assert (t.rows[i], t.cols[i]) == (min(int(cy), s - 1), min(int(cx), s - 1))
        w, h = (x2 - x1) / cell_w, (y2 - y1) / cell_h
        if units == "pixels":
            w, h = x2 - x1, y2 - y1
        best = max(range(3), key=lambda j: ref_shape_iou((w, h), anchors[j]))
        assert t.anchor_ids[i] == best
        np.testing.assert_allclose(t.offsets[i], [cx - t.cols[i], cy - t.rows[i]], atol=1e-5)
        np.testing.assert_allclose(t.log_wh[i], [math.log(w / anchors[best][0]), math.log(h / anchors[best][1])],
                                   atol=1e-5)


def test_assign_targets_edges_and_empty():
    # A center on the far edge lands in the last cell, offset just below 1.
    t = assign_targets(np.array([[300.0, 0, 320, 0.1]]), np.ones((1, 2)), 10, (320, 320))
    assert t.cols.tolist() == [9] and t.offsets[0, 0] < 1.0
    empty = assign_targets(np.zeros((0, 4)), np.ones((2, 2)), 13, (416, 416))
    assert empty.rows.shape == (0,) and empty.log_wh.shape == (0, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kmeans_anchors(np.ones((5, 2)), 2), r"k must be in \[1, 1\]"),  # more anchors than sizes
        (lambda: kmeans_anchors(np.array([[1.0, 0.0]]), 1), r"wh must hold finite sizes > 0"),  # zero height
        (lambda: kmeans_anchors(np.ones((5, 3)), 1), r"wh must be an \(N, 2\) array"),  # wrong shape
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), 4, (8, 8), "cm"), r"anchor_units must be"),
        (lambda: assign_targets(np.array([[5.0, 0, 1, 1]]), np.ones((1, 2)), 4, (8, 8)), r"x1 <= x2"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
