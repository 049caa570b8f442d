"""nms, batched_nms, soft_nms and select against Python loop references, OpenCV, and hypothesis properties."""

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgepipe.postprocess import suppression
from edgepipe.postprocess.iou import box_iou
from edgepipe.postprocess.suppression import BINCOUNT_MAX_ID, batched_nms, nms, select, soft_nms
from tests.test_iou import clustered_boxes, ref_iou, ref_iou32, uniform_boxes


def ref_nms(boxes, scores, thr) -> list[int]:
    """Greedy NMS one box at a time, by descending score with ties by the lower index; a box goes when its IoU
    (float32, as torchvision computes on float32 tensors) with a kept box is > thr (compared in float32)."""
    boxes = np.asarray(boxes, np.float32)
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), i))
    kept: list[int] = []
    for i in order:
        if all(ref_iou32(boxes[i], boxes[k]) <= np.float32(thr) for k in kept):
            kept.append(i)
    return kept


def ref_batched_nms(boxes, scores, classes, thr) -> list[int]:
    """ref_nms on each class alone, the results merged by descending score, ties by the lower index."""
    kept = []
    for c in set(classes.tolist()):
        idx = np.flatnonzero(classes == c)
        kept += [int(idx[k]) for k in ref_nms(boxes[idx], scores[idx], thr)]
    return sorted(kept, key=lambda i: (-float(scores[i]), i))


def candidates(seed, n, regime):
    """n boxes (clustered: mostly suppressed; uniform: mostly kept) and float32 scores in [0, 1)."""
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, n) if regime == "clustered" else uniform_boxes(rng, n)
    return boxes, rng.uniform(0, 1, n).astype(np.float32)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("regime", ["clustered", "uniform"])
@pytest.mark.parametrize("thr", [0.0, 0.3, 0.5, 0.7, 1.0])
def test_nms_matches_reference(seed, regime, thr):
    boxes, scores = candidates(seed, 60, regime)
    got = nms(boxes, scores, thr)
    assert got.dtype == np.int64
    assert got.tolist() == ref_nms(boxes, scores, thr)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_nms_other_dtypes(seed, dtype):
    # Float64 and int inputs are compared in float32, like the reference given the same boxes in float32.
    boxes, scores = candidates(seed, 60, "clustered")
    boxes = (boxes * 10).astype(dtype)
    assert nms(boxes, scores.astype(np.float64), 0.5).tolist() == ref_nms(boxes, scores, 0.5)


@pytest.mark.parametrize("seed", range(20))
def test_nms_ties_are_stable(seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(rng, 50, objects=5)
    scores = rng.integers(0, 4, 50).astype(np.float32) / 4  # many equal scores
    assert nms(boxes, scores, 0.5).tolist() == ref_nms(boxes, scores, 0.5)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("regime", ["clustered", "uniform"])
def test_nms_equals_opencv(seed, regime):
    # OpenCV (Rect2d boxes): keeps score > score_threshold, sorts stably by descending score, suppresses when
    # 1 - (1 - IoU in double), cast to float, is > nms_threshold. Away from exact ties at the threshold (random
    # boxes), with positive areas and scores, it keeps the same boxes in the same order.
    boxes, scores = candidates(seed, 200, regime)
    scores += np.float32(0.01)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
    for thr in (0.3, 0.45, 0.7):
        expected = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), 0.0, thr)
        assert nms(boxes, scores, thr).tolist() == np.asarray(expected, dtype=np.int64).ravel().tolist()


@pytest.mark.parametrize("seed", range(20))
def test_nms_boxes_built_at_the_threshold(seed):
    # Box 1 inside box 0 with IoU = thr in real numbers; its bottom edge moved by -3..3 float32 steps puts the
    # float32 IoU just below, at, and just above thr. Both outcomes must occur and match the reference.
    rng = np.random.default_rng(seed)
    thr = float(rng.uniform(0.05, 0.95))
    x1, y1 = rng.uniform(0, 500, 2)
    w, h = rng.uniform(5, 200, 2)
    box = np.array([x1, y1, x1 + w, y1 + h], np.float32)
    edge = np.float32(box[1] + (box[3] - box[1]) * np.float32(thr))
    outcomes = set()
    for steps in range(-3, 4):
        y2 = edge
        for _ in range(abs(steps)):
            y2 = np.nextafter(y2, np.float32(np.sign(steps) * np.inf), dtype=np.float32)
        pair = np.stack([box, [box[0], box[1], box[2], y2]])
        got = nms(pair, np.array([0.9, 0.8]), thr).tolist()
        assert got == ref_nms(pair, [0.9, 0.8], thr)
        outcomes.add(len(got))
    assert outcomes == {1, 2}


@pytest.mark.parametrize("seed", range(20))
def test_nms_threshold_equal_to_a_pairs_iou(seed):
    # Thresholds equal to the float32 IoU of an overlapping pair, and one float32 step either side of it.
    boxes, scores = candidates(seed, 40, "clustered")
    iou = box_iou(boxes, boxes)
    np.fill_diagonal(iou, 0)
    pairs = np.argwhere((iou > 0.05) & (iou < 0.95))
    at = iou[tuple(pairs[np.random.default_rng(seed).integers(len(pairs))])]
    for thr in (np.nextafter(at, np.float32(0)), at, np.nextafter(at, np.float32(1))):
        assert nms(boxes, scores, float(thr)).tolist() == ref_nms(boxes, scores, float(thr))


@pytest.mark.parametrize(
    ("boxes", "scores", "thr", "expected"),
    [
        ([], [], 0.5, []),  # empty input: empty int64 result
        ([[0, 0, 1, 1]], [0.3], 0.5, [0]),  # one box
        ([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.5, [0, 1]),  # IoU exactly 0.5 is not > 0.5: kept
        ([[0, 0, 10, 10], [0, 0, 10, 5.01]], [0.9, 0.8], 0.5, [0]),  # IoU 0.501 > 0.5: suppressed
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.5], 0.5, [0]),  # duplicates with equal scores: lower index wins
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.4, 0.5], 0.5, [1]),  # duplicates: the higher score wins
        ([[0, 0, 10, 10], [10, 0, 20, 10]], [0.9, 0.8], 0.0, [0, 1]),  # touching boxes overlap 0: kept at thr 0
        ([[0, 0, 10, 10], [9, 0, 20, 10]], [0.9, 0.8], 0.0, [0]),  # any overlap > 0 suppressed at thr 0
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], 1.0, [0, 1]),  # thr 1 suppresses nothing, not even twins
        ([[5, 5, 5, 5], [0, 0, 10, 10], [5, 5, 5, 5]], [0.9, 0.8, 0.7], 0.0, [0, 1, 2]),  # zero-area boxes kept
        ([[0, 0, 10, 10], [1, 1, 10, 10]], [-2.0, -1.0], 0.5, [1]),  # negative scores rank too
        # A chain: 1 overlaps 0 and 2 by 7/13 > 0.5, 0 and 2 overlap by 0.25. 0 removes 1; a removed box removes
        # nothing, so 2 stays.
        ([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]], [3, 2, 1], 0.5, [0, 2]),
    ],
)
def test_nms_hand_cases(boxes, scores, thr, expected):
    b, s = np.array(boxes, float).reshape(-1, 4), np.array(scores, float)
    got = nms(b, s, thr)
    assert got.dtype == np.int64
    assert got.tolist() == expected == ref_nms(b, s, thr)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("regime", ["clustered", "uniform"])
@pytest.mark.parametrize("rows_max", [suppression.CLASS_ROWS_MAX, 0])  # one score row per class / padded batches
def test_batched_nms_equals_per_class_nms(seed, regime, rows_max, monkeypatch):
    monkeypatch.setattr(suppression, "CLASS_ROWS_MAX", rows_max)
    boxes, scores = candidates(seed, 80, regime)
    classes = np.random.default_rng(seed).choice([0, 2, 3, 7], 80)  # ids with gaps
    got = batched_nms(boxes, scores, classes, 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == ref_batched_nms(boxes, scores, classes, 0.5)
    agnostic = batched_nms(boxes, scores, classes, 0.5, class_agnostic=True)
    assert agnostic.tolist() == nms(boxes, scores, 0.5).tolist() == ref_nms(boxes, scores, 0.5)


@pytest.mark.parametrize(
    "ids",
    [
        [0, 1],  # small ids (bincount renumbering)
        [BINCOUNT_MAX_ID - 1, 5],  # the largest id for bincount
        [BINCOUNT_MAX_ID, 5],  # the smallest id for np.unique renumbering
        [10**15, 3],  # an id far too large for a row per id
    ],
)
def test_batched_nms_large_class_ids(ids):
    boxes, scores = candidates(0, 60, "clustered")
    classes = np.array(ids, np.int64)[np.random.default_rng(0).integers(0, 2, 60)]
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == ref_batched_nms(boxes, scores, classes, 0.5)


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "expected"),
    [
        ([], [], [], []),  # empty input
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [0, 1], [0, 1]),  # twins of different classes both kept
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8], [4, 4], [0]),  # twins of one class: one kept
        ([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.9, 0.5], [1, 0, 1], [1, 0]),  # tie within class
    ],
)
def test_batched_nms_hand_cases(boxes, scores, classes, expected):
    got = batched_nms(np.array(boxes, float).reshape(-1, 4), np.array(scores, float), np.array(classes, int), 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == expected


def ref_soft_nms(boxes, scores, thr, sigma, method, score_thr) -> list[tuple[int, float]]:
    """Bodla et al. 2017, Algorithm 1, in Python floats: (index, decayed score) in selection order."""
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
                s[i] *= (1 - iou) if iou >= thr else 1.0
            else:
                s[i] *= math.exp(-(iou**2) / sigma)
        remaining = [i for i in remaining if s[i] >= score_thr]
    return out


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_reference(seed, method):
    boxes, scores = candidates(seed, 40, "clustered")
    got = soft_nms(boxes, scores, 0.3, 0.5, method, 0.05)
    expected = ref_soft_nms(boxes.tolist(), scores, 0.3, 0.5, method, 0.05)
    assert got.indices.dtype == np.int64 and got.scores.dtype == np.float32
    assert got.indices.tolist() == [i for i, _ in expected]
    np.testing.assert_allclose(got.scores, [s for _, s in expected], rtol=1e-5)


@pytest.mark.parametrize(
    ("method", "thr", "score_thr", "indices", "scores"),
    [
        ("linear", 0.3, 0.001, [0, 1], [0.9, 0.8 * 0.5]),  # IoU 0.5 >= 0.3: decayed by 1 - 0.5
        ("linear", 0.5, 0.001, [0, 1], [0.9, 0.8 * 0.5]),  # IoU exactly at N_t decays (the paper's >=)
        ("linear", 0.6, 0.001, [0, 1], [0.9, 0.8]),  # IoU below N_t: untouched
        ("gaussian", 0.3, 0.001, [0, 1], [0.9, 0.8 * math.exp(-0.25 / 0.5)]),  # exp(-IoU^2 / sigma)
        ("linear", 0.3, 0.5, [0], [0.9]),  # decayed to 0.4 < score_threshold 0.5: dropped
        ("linear", 0.3, 0.4, [0, 1], [0.9, 0.4]),  # decayed to exactly score_threshold: kept
    ],
)
def test_soft_nms_hand_cases(method, thr, score_thr, indices, scores):
    got = soft_nms(np.array([[0, 0, 10, 10], [0, 0, 10, 5]]), np.array([0.9, 0.8]), thr, 0.5, method, score_thr)
    assert got.indices.tolist() == indices
    np.testing.assert_allclose(got.scores, scores, rtol=1e-6)


def test_soft_nms_empty_and_all_below_threshold():
    empty = soft_nms(np.zeros((0, 4)), np.zeros(0))
    assert empty.indices.shape == (0,) and empty.indices.dtype == np.int64 and empty.scores.dtype == np.float32
    assert soft_nms(np.array([[0, 0, 1, 1]]), np.array([0.0005])).indices.shape == (0,)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("agnostic", [False, True])
def test_select_matches_reference(seed, agnostic):
    boxes, scores = candidates(seed, 200, "clustered")
    classes = np.random.default_rng(seed).integers(0, 3, 200)
    det = select(boxes, scores, classes, 0.3, 0.5, max_det=7, class_agnostic=agnostic, class_names=("a", "b", "c"))
    idx = np.flatnonzero(scores >= 0.3)
    if agnostic:
        expected = idx[ref_nms(boxes[idx], scores[idx], 0.5)][:7]
    else:
        expected = idx[ref_batched_nms(boxes[idx], scores[idx], classes[idx], 0.5)][:7]
    np.testing.assert_array_equal(det.xyxy, boxes[expected])
    np.testing.assert_array_equal(det.scores, scores[expected])
    np.testing.assert_array_equal(det.class_ids, classes[expected])
    assert det.class_names == ("a", "b", "c")


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("max_det", [1, 5, 40])
@pytest.mark.parametrize("thr", [0.0, 0.3])
def test_select_of_many_candidates_equals_nms_of_them_all(seed, max_det, thr):
    """More than PREFIX_MIN x max_det candidates: NMS starts on the best of them and takes more while it keeps
    fewer than max_det. Clustered boxes (at IoU threshold 0 most are suppressed, so the first part is not enough)
    and scores on a coarse grid (ties across the part's edge) give the same boxes as NMS over every candidate."""
    boxes, _ = candidates(seed, 600, "clustered")
    rng = np.random.default_rng(seed)
    scores = (rng.integers(1, 20, 600) / 20).astype(np.float32)
    classes = rng.integers(0, 2, 600)
    det = select(boxes, scores, classes, 0.1, thr, max_det=max_det)
    idx = np.flatnonzero(scores >= 0.1)
    expected = idx[ref_batched_nms(boxes[idx], scores[idx], classes[idx], thr)][:max_det]
    assert len(idx) > suppression.PREFIX_MIN * max_det
    np.testing.assert_array_equal(det.xyxy, boxes[expected])
    np.testing.assert_array_equal(det.class_ids, classes[expected])


@pytest.mark.parametrize(
    ("score_threshold", "max_det", "expected"),
    [
        (0.5, 300, [0, 2]),  # score exactly at the threshold kept (>=); box 1 suppressed by box 0
        (0.6, 300, [0]),  # box 2 below the threshold
        (0.5, 1, [0]),  # at most max_det boxes, the best first
        (1.0, 300, []),  # nothing passes: empty Detections
    ],
)
def test_select_hand_cases(score_threshold, max_det, expected):
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 9], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.5], np.float32)
    det = select(boxes, scores, np.zeros(3, int), score_threshold, 0.5, max_det)
    np.testing.assert_array_equal(det.xyxy, boxes[expected].reshape(-1, 4))
    assert det.xyxy.dtype == np.float32 and det.class_ids.dtype == np.int64


def test_caller_arrays_are_not_modified():
    boxes, scores = candidates(0, 50, "clustered")
    classes = np.random.default_rng(0).integers(0, 3, 50)
    copies = boxes.copy(), scores.copy(), classes.copy()
    for arr in (boxes, scores, classes):
        arr.flags.writeable = False
    nms(boxes, scores, 0.5)
    batched_nms(boxes, scores, classes, 0.5)
    soft_nms(boxes, scores)
    select(boxes, scores, classes, 0.1, 0.5)
    for arr, copy in zip((boxes, scores, classes), copies, strict=True):
        np.testing.assert_array_equal(arr, copy)


# Pixel-like coordinates (a thousandth of a pixel at the finest), zero widths included.
coords = st.floats(0, 100, allow_nan=False, width=32).map(lambda v: round(v, 3))


@st.composite
def box_sets(draw, max_n=25):
    """(boxes (n, 4) float32 xyxy, scores (n,) float32 with ties likely, class ids (n,) in 0..2)."""
    n = draw(st.integers(0, max_n))
    xy = draw(arrays(np.float32, (n, 2), elements=coords))
    wh = draw(arrays(np.float32, (n, 2), elements=coords | st.just(0.0)))
    scores = draw(arrays(np.float32, (n,), elements=st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0, 1, width=32)))
    classes = draw(arrays(np.int64, (n,), elements=st.integers(0, 2)))
    return np.concatenate([xy, xy + wh], 1), scores, classes


@settings(max_examples=150, deadline=None)
@given(box_sets(), st.floats(0, 1))
def test_nms_properties(data, thr):
    boxes, scores, classes = data
    kept = nms(boxes, scores, thr)
    assert len(set(kept.tolist())) == len(kept) and set(kept.tolist()) <= set(range(len(boxes)))  # a subset
    iou = box_iou(boxes[kept], boxes[kept])
    np.fill_diagonal(iou, 0)
    assert not (iou > np.float32(thr)).any()  # no kept pair above the threshold
    assert nms(boxes[kept], scores[kept], thr).tolist() == list(range(len(kept)))  # idempotent
    assert kept.tolist() == ref_nms(boxes, scores, thr)
    per_class = [np.flatnonzero(classes == c)[nms(boxes[classes == c], scores[classes == c], thr)] for c in range(3)]
    expected = sorted(np.concatenate(per_class).tolist(), key=lambda i: (-float(scores[i]), i))
    assert batched_nms(boxes, scores, classes, thr).tolist() == expected  # class-aware = per-class nms


B = np.array([[0, 0, 1, 1.0]])
S = np.array([0.5])
C = np.array([0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nms(B, S, 1.5), r"iou_threshold must be in \[0, 1\], but got 1.5"),  # threshold above 1
        (lambda: nms(B, S, -0.1), r"iou_threshold must be in \[0, 1\], but got -0.1"),  # threshold below 0
        (lambda: nms(B, S, float("nan")), r"iou_threshold must be in \[0, 1\], but got nan"),  # NaN threshold
        (lambda: nms(B, S, "x"), r"iou_threshold must be a number in \[0, 1\], but got 'x'"),  # not a number
        (lambda: nms(B, np.array([0.5, 0.6]), 0.5), r"scores must have shape \(1,\) to match the boxes, but got"),
        (lambda: nms(B, np.array([[0.5]]), 0.5), r"scores must have shape \(1,\) .* but got shape \(1, 1\)"),  # 2D
        (lambda: nms(B, np.array([np.nan]), 0.5), r"scores must be finite, but got NaN or inf at index \[0\]"),
        (lambda: nms(B, np.array(["a"]), 0.5), r"scores must be a float array, but got dtype <U1"),  # str scores
        (lambda: nms(np.array([[0, 0, np.inf, 1]]), S, 0.5), r"boxes must be finite, but got NaN or inf"),  # inf
        (lambda: nms(np.array([[2, 0, 1, 1.0]]), S, 0.5), r"boxes must be xyxy with x1 <= x2 and y1 <= y2"),  # w < 0
        (lambda: nms(np.zeros((1, 3)), S, 0.5), r"boxes must be .* shape \(N, 4\), but got shape \(1, 3\)"),
        (lambda: nms(np.ones((1, 4), bool), S, 0.5), r"boxes must be a float or integer array, but got dtype bool"),
        (lambda: batched_nms(B, S, np.array([0.5]), 0.5), r"class_ids must be an integer array, but got dtype float"),
        (lambda: batched_nms(B, S, np.array([-1]), 0.5), r"class_ids must be >= 0, but got -1"),  # negative id
        (lambda: batched_nms(B, S, np.array([0, 1]), 0.5), r"class_ids must have shape \(1,\)"),  # length mismatch
        (lambda: batched_nms(B, S, C, 2), r"iou_threshold must be in \[0, 1\], but got 2"),  # bad threshold
        (lambda: select(B, S, C, 2.0, 0.5), r"score_threshold must be in \[0, 1\], but got 2.0"),  # bad conf
        (lambda: select(B, S, C, 0.5, -1), r"iou_threshold must be in \[0, 1\], but got -1"),  # bad iou
        (lambda: select(B, S, C, 0.5, 0.5, max_det=0), r"max_det must be an int >= 1, but got 0"),  # zero
        (lambda: select(B, S, C, 0.5, 0.5, max_det=2.5), r"max_det must be an int >= 1, but got 2.5"),  # float
        (lambda: soft_nms(B, S, method="box"), r"method must be one of \('linear', 'gaussian'\), but got 'box'"),
        (lambda: soft_nms(B, S, sigma=0), r"sigma must be a finite number > 0, but got 0"),  # zero sigma
        (lambda: soft_nms(B, S, sigma=float("inf")), r"sigma must be a finite number > 0, but got inf"),  # inf
        (lambda: soft_nms(B, S, sigma="s"), r"sigma must be a finite number > 0, but got 's'"),  # not a number
        (lambda: soft_nms(B, S, iou_threshold=1.1), r"iou_threshold must be in \[0, 1\], but got 1.1"),
        (lambda: soft_nms(B, S, score_threshold=-0.5), r"score_threshold must be in \[0, 1\], but got -0.5"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
