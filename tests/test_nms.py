"""IoU and NMS against slow, obvious references (Python loops), OpenCV, and hypothesis properties."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from postprocess.iou import box_iou, box_iou_pairwise
from postprocess.nms import batched_nms, nms, select, soft_nms


def ref_iou(a, b) -> float:
    """IoU of two xyxy boxes in float64 Python arithmetic."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_nms(boxes, scores, thr) -> list[int]:
    """Greedy NMS, one box at a time; ties broken by the lower index."""
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept: list[int] = []
    for i in order:
        if all(ref_iou(boxes[i], boxes[k]) <= thr for k in kept):
            kept.append(i)
    return kept


def ref_batched_nms(boxes, scores, classes, thr) -> list[int]:
    kept = []
    for c in sorted(set(classes.tolist())):
        idx = np.flatnonzero(classes == c)
        kept += [int(idx[k]) for k in ref_nms(boxes[idx].tolist(), scores[idx].tolist(), thr)]
    return sorted(kept, key=lambda i: (-scores[i], i))


def uniform_boxes(rng, n, size=640.0):
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, size / 4, (n, 2))], 1).astype(np.float32)


def clustered_boxes(rng, n, objects=20, size=640.0):
    centers = uniform_boxes(rng, objects, size)
    pick = centers[rng.integers(0, objects, n)]
    jitter = rng.normal(0, 4, (n, 4))
    b = pick + jitter
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    return b.astype(np.float32)


@pytest.mark.parametrize("seed", range(10))
def test_box_iou_matches_loop(seed):
    rng = np.random.default_rng(seed)
    a, b = clustered_boxes(rng, 30), uniform_boxes(rng, 20)
    expected = [[ref_iou(x, y) for y in b.tolist()] for x in a.tolist()]
    got = box_iou(a, b)
    assert got.shape == (30, 20) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(box_iou_pairwise(a[:20], b), np.diag(np.array(expected)[:20]), atol=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [0, 0, 10, 5], 0.5),  # half
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # two identical zero-area boxes: no division by zero
        ([5, 5, 5, 5], [0, 0, 10, 10], 0.0),  # a point inside a box
    ],
)
def test_box_iou_hand_cases(a, b, expected):
    assert box_iou(np.array([a], float), np.array([b], float))[0, 0] == pytest.approx(expected)


def test_box_iou_empty():
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert box_iou_pairwise(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("regime", ["clustered", "uniform"])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_reference(seed, regime, thr):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 60) if regime == "clustered" else uniform_boxes(rng, 60)
    scores = rng.uniform(0, 1, 60).astype(np.float32)
    assert nms(boxes, scores, thr).tolist() == ref_nms(boxes.tolist(), scores.tolist(), thr)


@pytest.mark.parametrize("seed", range(25))
def test_nms_ties_are_stable(seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 50, objects=5)
    scores = rng.integers(0, 4, 50).astype(np.float32) / 4  # many equal scores
    assert nms(boxes, scores, 0.5).tolist() == ref_nms(boxes.tolist(), scores.tolist(), 0.5)


@pytest.mark.parametrize("seed", range(25))
def test_nms_equals_opencv(seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 100)
    scores = rng.uniform(0.01, 1, 100).astype(np.float32)  # distinct, positive: OpenCV's order is defined
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    expected = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, 0.45)
    assert sorted(nms(boxes, scores, 0.45).tolist()) == sorted(np.asarray(expected).tolist())


@pytest.mark.parametrize("delta", [-1e-3, 1e-3])
def test_nms_just_below_and_above_threshold(delta):
    # Box 1 overlaps box 0 with IoU = 0.5 + delta: suppressed only when above the threshold.
    h = 10 * (0.5 + delta)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, h]])
    kept = nms(boxes, np.array([0.9, 0.8]), 0.5).tolist()
    assert kept == ([0] if delta > 0 else [0, 1])


def test_nms_exactly_at_threshold_keeps():
    # IoU exactly 0.5 is not > 0.5: both kept (torchvision's meaning).
    assert nms(np.array([[0, 0, 10, 10], [0, 0, 10, 5.0]]), np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]


@pytest.mark.parametrize(
    ("boxes", "scores", "expected"),
    [
        ([], [], []),  # empty input: empty int64 result
        ([[0, 0, 1, 1]], [0.3], [0]),  # one box
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.5], [0]),  # exact duplicates with a tie: lower index wins
        ([[5, 5, 5, 5], [0, 0, 10, 10], [5, 5, 5, 5]], [0.9, 0.8, 0.7], [0, 1, 2]),  # zero-area boxes kept
        ([[0, 0, 10, 10], [1, 1, 10, 10]], [-2.0, -1.0], [1]),  # negative scores still rank
    ],
)
def test_nms_hand_cases(boxes, scores, expected):
    got = nms(np.array(boxes, float).reshape(-1, 4), np.array(scores, float), 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == expected


@pytest.mark.parametrize("seed", range(25))
def test_batched_nms_equals_per_class_nms(seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 80, objects=10)
    scores = rng.uniform(0, 1, 80).astype(np.float32)
    classes = rng.integers(0, 4, 80)
    got = batched_nms(boxes, scores, classes, 0.5).tolist()
    assert got == ref_batched_nms(boxes, scores, classes, 0.5)
    agnostic = batched_nms(boxes, scores, classes, 0.5, class_agnostic=True).tolist()
    assert agnostic == ref_nms(boxes.tolist(), scores.tolist(), 0.5)


def ref_soft_nms(boxes, scores, thr, sigma, method, score_thr):
    s = [float(x) for x in scores]
    remaining = [i for i in range(len(s)) if s[i] >= score_thr]
    out = []
    while remaining:
        best = min(remaining, key=lambda i: (-s[i], i))
        out.append((best, s[best]))
        remaining.remove(best)
        for i in remaining:
            iou = ref_iou(boxes[best], boxes[i])
            if method == "linear":
                s[i] *= (1 - iou) if iou > thr else 1.0
            else:
                s[i] *= float(np.exp(-(iou**2) / sigma))
        remaining = [i for i in remaining if s[i] >= score_thr]
    return out


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_reference(seed, method):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 40, objects=6)
    scores = rng.uniform(0, 1, 40)
    got = soft_nms(boxes, scores, 0.3, 0.5, method, 0.05)
    expected = ref_soft_nms(boxes.tolist(), scores, 0.3, 0.5, method, 0.05)
    assert got.indices.tolist() == [i for i, _ in expected]
    np.testing.assert_allclose(got.scores, [s for _, s in expected], rtol=1e-5)


def test_select_filters_suppresses_and_caps():
    rng = np.random.default_rng(0)
    boxes = clustered_boxes(rng, 200)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    classes = rng.integers(0, 3, 200)
    det = select(boxes, scores, classes, 0.3, 0.5, max_det=7, class_names=("a", "b", "c"))
    idx = np.flatnonzero(scores >= 0.3)
    expected = [int(idx[k]) for k in ref_batched_nms(boxes[idx], scores[idx], classes[idx], 0.5)][:7]
    np.testing.assert_array_equal(det.xyxy, boxes[expected])
    np.testing.assert_array_equal(det.class_ids, classes[expected])
    assert det.class_names == ("a", "b", "c")
    assert len(select(boxes, scores, classes, 1.0, 0.5)) == 0


# Pixel-like coordinates (a thousandth of a pixel at the finest), where float32 areas cannot underflow.
finite = st.floats(0, 100, allow_nan=False, width=32).map(lambda v: round(v, 3))


@st.composite
def box_sets(draw, max_n=25):
    n = draw(st.integers(0, max_n))
    xy = draw(arrays(np.float32, (n, 2), elements=finite))
    wh = draw(arrays(np.float32, (n, 2), elements=finite))
    scores = draw(arrays(np.float32, (n,), elements=st.floats(0, 1, width=32)))
    classes = draw(arrays(np.int64, (n,), elements=st.integers(0, 2)))
    return np.concatenate([xy, xy + wh], 1), scores, classes


@settings(max_examples=150, deadline=None)
@given(box_sets(), box_sets())
def test_iou_properties(first, second):
    a, b = first[0], second[0]
    iou = box_iou(a, b)
    assert ((iou >= 0) & (iou <= 1)).all()
    np.testing.assert_allclose(iou, box_iou(b, a).T, atol=1e-6)


@settings(max_examples=150, deadline=None)
@given(box_sets(), st.floats(0, 1))
def test_nms_properties(data, thr):
    boxes, scores, classes = data
    kept = nms(boxes, scores, thr)
    assert len(set(kept.tolist())) == len(kept) and set(kept.tolist()) <= set(range(len(boxes)))
    iou = box_iou(boxes[kept], boxes[kept])
    np.fill_diagonal(iou, 0)
    assert (iou <= thr + 1e-6).all()  # no kept pair above the threshold
    again = nms(boxes[kept], scores[kept], thr)
    assert again.tolist() == list(range(len(kept)))  # idempotent
    per_class = ref_batched_nms(boxes, scores, classes, thr)
    assert batched_nms(boxes, scores, classes, thr).tolist() == per_class


B = np.array([[0, 0, 1, 1.0]])
S = np.array([0.5])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nms(B, S, 1.5), r"iou_threshold must be in \[0, 1\], but got 1.5"),  # threshold above 1
        (lambda: nms(B, S, -0.1), r"iou_threshold must be in \[0, 1\], but got -0.1"),  # threshold below 0
        (lambda: nms(B, S, "x"), r"iou_threshold must be a number"),  # not a number
        (lambda: nms(B, np.array([0.5, 0.6]), 0.5), r"scores must have shape \(1,\)"),  # length mismatch
        (lambda: nms(B, np.array([np.nan]), 0.5), r"scores must be finite"),  # NaN score
        (lambda: nms(np.array([[0, 0, np.inf, 1]]), S, 0.5), r"boxes must be finite"),  # inf box
        (lambda: nms(np.array([[2, 0, 1, 1.0]]), S, 0.5), r"x1 <= x2 and y1 <= y2"),  # negative width
        (lambda: nms(np.zeros((1, 3)), S, 0.5), r"shape \(N, 4\), but got shape \(1, 3\)"),  # wrong shape
        (lambda: batched_nms(B, S, np.array([0.5]), 0.5), r"class_ids must be an integer array"),  # float ids
        (lambda: select(B, S, np.array([0]), 2.0, 0.5), r"score_threshold must be in \[0, 1\]"),  # bad conf
        (lambda: select(B, S, np.array([0]), 0.5, 0.5, max_det=0), r"max_det must be >= 1, but got 0"),
        (lambda: soft_nms(B, S, method="box"), r"method must be one of"),  # unknown soft-NMS method
        (lambda: soft_nms(B, S, sigma=0), r"sigma must be > 0, but got 0"),  # bad sigma
        (lambda: box_iou_pairwise(B, np.zeros((2, 4))), r"boxes2 must have as many rows as boxes1 \(1\)"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
