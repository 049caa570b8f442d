"""Anchor boxes: shape IoU and k-means against loops and planted clusters; target assignment against a loop."""

import math

import numpy as np
import pytest

from edgepipe.postprocess.anchors import assign_targets, kmeans_anchors, shape_iou
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course


def ref_shape_iou(a, b) -> float:
    """IoU of two boxes of sizes a, b drawn around the same center, from their corners."""
    box_a = [-a[0] / 2, -a[1] / 2, a[0] / 2, a[1] / 2]
    box_b = [-b[0] / 2, -b[1] / 2, b[0] / 2, b[1] / 2]
    iw = min(box_a[2], box_b[2]) - max(box_a[0], box_b[0])
    ih = min(box_a[3], box_b[3]) - max(box_a[1], box_b[1])
    return iw * ih / (a[0] * a[1] + b[0] * b[1] - iw * ih)


def ref_best(size, anchors) -> int:
    """Index of the anchor with the highest shape IoU, the first on ties."""
    ious = [ref_shape_iou(size, a) for a in anchors]
    return ious.index(max(ious))


@pytest.mark.parametrize("seed", range(5))
def test_shape_iou_matches_loop(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.5, 50, (20, 2)), rng.uniform(0.5, 50, (7, 2))
    got = shape_iou(a, b)
    assert got.shape == (20, 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, [[ref_shape_iou(x, y) for y in b] for x in a], rtol=1e-6)


@pytest.mark.parametrize(
    ("wh1", "wh2", "expected"),
    [
        # the same size: 1
        ([[3.0, 4.0]], [[3.0, 4.0]], [[1.0]]),
        # one inside the other: the ratio of the areas
        ([[2.0, 2.0]], [[4.0, 4.0]], [[0.25]]),
        # crossed shapes 1 x 4 and 4 x 1: 1 / 7
        ([[1.0, 4.0]], [[4.0, 1.0]], [[1 / 7]]),
        # no sizes on one side: an empty (0, M) result
        (np.zeros((0, 2)), [[1.0, 1.0], [2.0, 2.0]], np.zeros((0, 2))),
    ],
)
def test_shape_iou_cases(wh1, wh2, expected):
    np.testing.assert_allclose(shape_iou(np.asarray(wh1), np.asarray(wh2)), expected, rtol=1e-6)


def planted(rng, centers, per=60, spread=0.05):
    """per sizes around each center, jittered by a factor exp(N(0, spread)) in w and h."""
    return np.concatenate([c * np.exp(rng.normal(0, spread, (per, 2))) for c in centers])


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_recovers_planted_clusters(seed):
    rng = np.random.default_rng(seed)
    centers = np.array([[10, 12], [40, 20], [25, 70], [120, 110]], dtype=float)
    wh = planted(rng, centers)
    result = kmeans_anchors(wh, 4, seed=seed)
    expected = centers[np.argsort(centers.prod(1))]
    np.testing.assert_allclose(result.anchors, expected, rtol=0.05)
    assert result.anchors.dtype == np.float32 and result.assignments.dtype == np.int64
    assert (np.diff(result.anchors.prod(1)) > 0).all()  # sorted by area
    # each planted group is one cluster: its sizes share one assignment, the anchor of its center
    groups = result.assignments.reshape(4, 60)
    assert (groups == groups[:, :1]).all()
    assert sorted(groups[:, 0].tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_result_is_a_fixed_point_and_reports_its_iou(seed):
    rng = np.random.default_rng(seed)
    wh = rng.uniform(5, 200, (300, 2))
    result = kmeans_anchors(wh, 5, seed=seed)
    anchors = result.anchors.astype(np.float64)
    best = [ref_best(x, anchors) for x in wh]
    assert result.assignments.tolist() == best
    ious = [ref_shape_iou(x, anchors[j]) for x, j in zip(wh, best, strict=True)]
    assert result.mean_iou == pytest.approx(sum(ious) / len(ious))
    for j in range(5):  # converged: every anchor is the median width and height of the boxes assigned to it
        for d in (0, 1):
            values = sorted(x[d] for x, b in zip(wh.tolist(), best, strict=True) if b == j)
            median = (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2
            assert anchors[j, d] == pytest.approx(median, rel=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_kmeans_beats_random_anchors(seed):
    rng = np.random.default_rng(seed)
    wh = np.exp(rng.normal(3, 0.8, (300, 2)))  # log-normal sizes, as in real data
    result = kmeans_anchors(wh, 5, seed=seed)
    for trial in range(10):  # anchors drawn from the data at random do no better
        random_anchors = wh[np.random.default_rng(100 + trial).choice(300, 5, replace=False)]
        assert result.mean_iou >= np.mean([max(ref_shape_iou(x, a) for a in random_anchors) for x in wh])


@pytest.mark.parametrize(
    ("wh", "k", "expected_anchors", "expected_iou"),
    [
        # k = 1: the median size of all boxes, per axis
        ([[2.0, 2.0], [4.0, 7.0], [6.0, 4.0]], 1, [[4.0, 4.0]], None),
        # k = the number of distinct sizes: the sizes themselves, sorted by area, IoU 1
        ([[9.0, 9.0], [1.0, 2.0], [9.0, 9.0], [3.0, 3.0], [1.0, 2.0]], 3, [[1, 2], [3, 3], [9, 9]], 1.0),
        # one box
        ([[5.0, 7.0]], 1, [[5.0, 7.0]], 1.0),
    ],
)
def test_kmeans_cases(wh, k, expected_anchors, expected_iou):
    result = kmeans_anchors(np.array(wh), k)
    np.testing.assert_allclose(result.anchors, expected_anchors, rtol=1e-6)
    if expected_iou is not None:
        assert result.mean_iou == pytest.approx(expected_iou)


def test_kmeans_is_deterministic_with_a_seed_and_leaves_the_input_alone():
    wh = np.random.default_rng(3).uniform(5, 200, (200, 2))
    before = wh.copy()
    a, b = kmeans_anchors(wh, 5, seed=7), kmeans_anchors(wh, 5, seed=7)
    np.testing.assert_array_equal(a.anchors, b.anchors)
    np.testing.assert_array_equal(a.assignments, b.assignments)
    np.testing.assert_array_equal(wh, before)


def ref_assign(box, anchors, grid, image_size, units):
    """One box, loops: (row, col, anchor, (offset x, offset y), (log w ratio, log h ratio))."""
    (s_h, s_w), (h_in, w_in) = grid, image_size
    cell_w, cell_h = w_in / s_w, h_in / s_h
    gx, gy = (box[0] + box[2]) / 2 / cell_w, (box[1] + box[3]) / 2 / cell_h
    col, row = min(max(math.floor(gx), 0), s_w - 1), min(max(math.floor(gy), 0), s_h - 1)
    w, h = box[2] - box[0], box[3] - box[1]
    if units == "grid":
        w, h = w / cell_w, h / cell_h
    k = ref_best((w, h), anchors)
    return row, col, k, (gx - col, gy - row), (math.log(w / anchors[k][0]), math.log(h / anchors[k][1]))


@pytest.mark.parametrize("units", ["grid", "pixels"])
@pytest.mark.parametrize("seed", range(6))
def test_assign_targets_matches_loop(units, seed):
    rng = np.random.default_rng(seed)
    size, grid = (256, 320), (8, 10) if seed % 2 else (8, 8)  # cells 32 x 32 px or 32 x 40 px
    xy = rng.uniform(0, 240, (30, 2))
    boxes = np.minimum(np.concatenate([xy, xy + rng.uniform(2, 120, (30, 2))], 1), [320, 256, 320, 256])  # inside
    anchors = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 3.0], [3.0, 2.5]]) * (1 if units == "grid" else 36)
    boxes = boxes.astype(np.float32)  # the project's box dtype: the reference sees the same coordinates
    t = assign_targets(boxes, anchors, grid if seed % 2 else 8, size, units)
    for i, box in enumerate(boxes.tolist()):
        row, col, k, offset, log_wh = ref_assign(box, anchors, grid, size, units)
        assert (t.rows[i], t.cols[i], t.anchor_ids[i]) == (row, col, k)
        np.testing.assert_allclose(t.offsets[i], offset, atol=1e-6)
        np.testing.assert_allclose(t.log_wh[i], log_wh, atol=1e-6)
    assert t.offsets.dtype == np.float32 and t.rows.dtype == np.int64 and t.anchor_ids.dtype == np.int64


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        # a center exactly on a cell edge (x = 32): the cell to its right, offset 0
        ([24.0, 8.0, 40.0, 24.0], {"cols": [1], "rows": [0], "offsets": [[0.0, 0.5]]}),
        # a center on the image's far edge: the last cell, offset just below 1
        ([310.0, 310.0, 330.0, 330.0], {"cols": [9], "rows": [9], "offsets": [[1 - 2**-24] * 2]}),
        # a center outside the image (negative): the first cell, offset clipped to 0
        ([-30.0, -30.0, -10.0, -10.0], {"cols": [0], "rows": [0], "offsets": [[0.0, 0.0]]}),
        # a 1 x 1 cell box ties between the anchors 1 x 2 and 2 x 1 (IoU 0.5 both): the lower index
        ([0.0, 0.0, 32.0, 32.0], {"anchor_ids": [0], "log_wh": [[0.0, math.log(0.5)]]}),
        # a box of zero width still gets an anchor and a finite target
        ([10.0, 10.0, 10.0, 30.0], {"anchor_ids": [0], "log_wh": [[math.log(1e-6), math.log(20 / 32 / 2)]]}),
    ],
)
def test_assign_targets_edges(box, expected):
    t = assign_targets(np.array([box]), np.array([[1.0, 2.0], [2.0, 1.0]]), 10, (320, 320))
    for field, value in expected.items():
        np.testing.assert_allclose(getattr(t, field), value, rtol=1e-6, atol=1e-7)
    assert ((t.offsets >= 0) & (t.offsets < 1)).all()  # [0, 1): sigmoid(tx) can reach them


def test_assign_targets_empty():
    t = assign_targets(np.zeros((0, 4)), np.ones((2, 2)), (13, 13), (416, 416))
    assert t.rows.shape == t.cols.shape == t.anchor_ids.shape == (0,)
    assert t.offsets.shape == t.log_wh.shape == (0, 2)
    assert t.rows.dtype == np.int64 and t.log_wh.dtype == np.float32


@pytest.mark.parametrize("units", ["grid", "pixels"])
def test_targets_encoded_then_decoded_give_the_boxes_back(units):
    # The course's training target, written into a raw output the way the loss asks the network to, decodes back.
    rng = np.random.default_rng(0)
    grid, size = (5, 6), (160, 192)
    anchors = np.array([[1.0, 1.0], [2.0, 3.0]]) * (1 if units == "grid" else 32)
    cells = rng.choice(30, 4, replace=False)
    centers = np.stack([(cells % 6 + rng.uniform(0.1, 0.9, 4)) * 32, (cells // 6 + rng.uniform(0.1, 0.9, 4)) * 32], 1)
    wh = rng.uniform(10, 60, (4, 2))
    boxes = np.concatenate([centers - wh / 2, centers + wh / 2], 1)
    t = assign_targets(boxes, anchors, grid, size, units)
    raw = np.zeros((2, 6, *grid), np.float32)  # (A, 5+C, S_h, S_w), C = 1
    raw[:, 4] = -20.0
    logit = np.log(t.offsets / (1 - t.offsets))
    raw[t.anchor_ids, :4, t.rows, t.cols] = np.concatenate([logit, t.log_wh], 1)
    raw[t.anchor_ids, 4, t.rows, t.cols] = 5.0
    det = decode_course(raw.reshape(1, 12, *grid), [Transform.identity(size)], anchors, 0.5, 1.0, anchor_units=units)
    order = np.lexsort((det[0].xyxy[:, 1], det[0].xyxy[:, 0]))
    expected = np.clip(boxes, 0, [192, 160, 192, 160])[np.lexsort((boxes[:, 1], boxes[:, 0]))]  # the decoder clips
    np.testing.assert_allclose(det[0].xyxy[order], expected, atol=1e-3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # more anchors than distinct sizes
        (lambda: kmeans_anchors(np.ones((5, 2)), 2), r"k must be in \[1, 1\] \(the number of distinct box sizes is 1"),
        # k = 0
        (lambda: kmeans_anchors(np.ones((5, 2)), 0), r"k must be in \[1, 1\].*but got 0"),
        # k not an int
        (lambda: kmeans_anchors(np.ones((5, 2)), 1.5), r"k must be an int in \[1, 1\], but got 1.5"),
        # a zero height
        (lambda: kmeans_anchors(np.array([[1.0, 0.0]]), 1), r"wh must hold finite sizes > 0, but row 0 is \[1.0, 0"),
        # a negative width
        (lambda: kmeans_anchors(np.array([[2.0, 2.0], [-1.0, 3.0]]), 1), r"wh must hold .* row 1 is \[-1.0, 3.0\]"),
        # NaN
        (lambda: kmeans_anchors(np.array([[np.nan, 1.0]]), 1), r"wh must hold finite sizes > 0"),
        # no boxes
        (lambda: kmeans_anchors(np.zeros((0, 2)), 1), r"wh must be an \(N, 2\) array of \(w, h\) with N >= 1"),
        # wrong shape
        (lambda: kmeans_anchors(np.ones((5, 3)), 1), r"wh must be an \(N, 2\) array .* got shape \(5, 3\)"),
        # not numbers
        (lambda: kmeans_anchors("sizes", 1), r"wh must be an \(N, 2\) array of \(w, h\) numbers, but got str"),
        # max_iter 0
        (lambda: kmeans_anchors(np.ones((5, 2)), 1, max_iter=0), r"max_iter must be >= 1, but got 0"),
        # n_init 0
        (lambda: kmeans_anchors(np.ones((5, 2)), 1, n_init=0), r"n_init must be >= 1, but got 0"),
        # shape_iou with a zero size
        (lambda: shape_iou(np.ones((1, 2)), np.zeros((1, 2))), r"wh2 must hold finite sizes > 0"),
        # unknown anchor units
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), 4, (8, 8), "cm"), r"anchor_units must be one of"),
        # x1 > x2
        (lambda: assign_targets(np.array([[5.0, 0, 1, 1]]), np.ones((1, 2)), 4, (8, 8)), r"x1 <= x2"),
        # no anchors
        (lambda: assign_targets(np.ones((1, 4)), np.zeros((0, 2)), 4, (8, 8)), r"anchors must be given .* got none"),
        # a zero grid
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), 0, (8, 8)), r"grid_size must be an int >= 1 or a pa"),
        # a grid of three numbers
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), (2, 2, 2), (8, 8)), r"grid_size must be"),
        # a float grid
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), 4.0, (8, 8)), r"grid_size must be .* but got 4.0"),
        # a zero image height
        (lambda: assign_targets(np.ones((1, 4)), np.ones((1, 2)), 4, (0, 8)), r"image_size must be \(height, width\)"),
        # boxes not (N, 4)
        (lambda: assign_targets(np.ones((2, 3)), np.ones((1, 2)), 4, (8, 8)), r"boxes must be a 2D array .*\(N, 4\)"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
