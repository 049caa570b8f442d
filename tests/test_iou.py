"""box_iou and box_iou_pairwise against Python loops (float64 and float32) and torchvision's formula in float64."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edgepipe.postprocess.iou import BLOCK_ELEMENTS, box_iou, box_iou_pairwise


def ref_iou(a, b) -> float:
    """IoU of two xyxy boxes in Python float64 arithmetic; 0 when the union is 0."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ref_iou32(a, b) -> np.float32:
    """The same formula one float32 operation at a time: what box_iou and the NMS kernel compute, bit for bit."""
    a, b = [np.float32(v) for v in a], [np.float32(v) for v in b]
    zero = np.float32(0)
    w = max(zero, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(zero, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > zero else zero


def torchvision_iou64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """torchvision.ops.box_iou's formula (areas, lt, rb, clamp) in float64 numpy, 0/0 -> 0. (N, 4), (M, 4) -> (N, M)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def uniform_boxes(rng, n, size=640.0, dtype=np.float32):
    """n boxes xyxy spread over a size x size image, most of them disjoint."""
    xy = rng.uniform(0, size, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, size / 4, (n, 2))], 1).astype(dtype)


def clustered_boxes(rng, n, objects=20, size=640.0, dtype=np.float32):
    """n boxes xyxy jittered around a few objects, most of them overlapping."""
    centers = uniform_boxes(rng, objects, size, np.float64)
    b = centers[rng.integers(0, objects, n)] + rng.normal(0, 4, (n, 4))
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    return b.astype(dtype)


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_box_iou_matches_references(seed, dtype):
    rng = np.random.default_rng(seed)
    a, b = clustered_boxes(rng, 30, dtype=dtype), np.concatenate([clustered_boxes(rng, 10), uniform_boxes(rng, 15)])
    got = box_iou(a, b)
    assert got.shape == (30, 25) and got.dtype == np.float32
    np.testing.assert_allclose(got, [[ref_iou(x, y) for y in b.tolist()] for x in a.tolist()], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got, torchvision_iou64(a, b), rtol=1e-5, atol=1e-6)
    a32 = a.astype(np.float32)  # box_iou computes in float32: equal bit for bit to the float32 loop
    np.testing.assert_array_equal(got, [[ref_iou32(x, y) for y in b] for x in a32])


@pytest.mark.parametrize("seed", range(10))
def test_box_iou_pairwise_is_the_diagonal(seed):
    rng = np.random.default_rng(seed)
    a, b = clustered_boxes(rng, 40), clustered_boxes(rng, 40)
    got = box_iou_pairwise(a, b)
    assert got.shape == (40,) and got.dtype == np.float32
    np.testing.assert_array_equal(got, [ref_iou32(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_array_equal(got, np.diag(box_iou(a, b)))


def test_box_iou_across_row_blocks():
    # M = 1,000 columns: blocks of BLOCK_ELEMENTS // 1000 rows, the last one partial.
    rng = np.random.default_rng(0)
    rows = BLOCK_ELEMENTS // 1000
    a, b = clustered_boxes(rng, 3 * rows + 5, objects=5), clustered_boxes(rng, 1000, objects=5)
    np.testing.assert_allclose(box_iou(a, b), torchvision_iou64(a, b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching along an edge
        ([0, 0, 10, 10], [10, 10, 20, 20], 0.0),  # touching at a corner
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [0, 0, 10, 5], 0.5),  # half of it
        ([0, 0, 10, 10], [5, 0, 15, 10], 1 / 3),  # shifted by half a width
        ([0, 0, 10, 10], [2, 2, 4, 4], 0.04),  # contained
        ([5, 5, 5, 5], [5, 5, 5, 5], 0.0),  # two identical zero-area boxes: 0, no division by zero
        ([5, 5, 5, 5], [0, 0, 10, 10], 0.0),  # a point inside a box
        ([0, 5, 10, 5], [0, 0, 10, 10], 0.0),  # a zero-height line across a box
        ([0, 0, 100_000, 100_000], [0, 0, 100_000, 50_000], 0.5),  # int coordinates whose area overflows int32
    ],
)
def test_box_iou_hand_cases(a, b, expected):
    for dtype in (np.int32, np.int64, np.float32, np.float64):
        x, y = np.array([a], dtype), np.array([b], dtype)
        assert box_iou(x, y)[0, 0] == pytest.approx(expected, rel=1e-6)
        assert box_iou(y, x)[0, 0] == pytest.approx(expected, rel=1e-6)
        assert box_iou_pairwise(x, y)[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("n", "m"),
    [
        (0, 3),  # no boxes1
        (3, 0),  # no boxes2
        (0, 0),  # neither
    ],
)
def test_box_iou_empty(n, m):
    got = box_iou(np.zeros((n, 4)), np.ones((m, 4)))
    assert got.shape == (n, m) and got.dtype == np.float32


def test_box_iou_pairwise_empty():
    got = box_iou_pairwise(np.zeros((0, 4), np.int64), np.zeros((0, 4)))
    assert got.shape == (0,) and got.dtype == np.float32


def test_inputs_are_not_modified_and_may_be_read_only():
    rng = np.random.default_rng(0)
    a, b = clustered_boxes(rng, 5), clustered_boxes(rng, 5)
    a_copy, b_copy = a.copy(), b.copy()
    a.flags.writeable = b.flags.writeable = False
    box_iou(a, b)
    box_iou_pairwise(a, b)
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(b, b_copy)


# Pixel-like coordinates (a thousandth of a pixel at the finest).
coords = st.floats(0, 100, allow_nan=False, width=32).map(lambda v: round(v, 3))


@st.composite
def boxes(draw, max_n=20):
    """(n, 4) float32 xyxy with x1 <= x2, y1 <= y2, zero-area boxes included."""
    n = draw(st.integers(0, max_n))
    xy = draw(arrays(np.float32, (n, 2), elements=coords))
    wh = draw(arrays(np.float32, (n, 2), elements=coords | st.just(0.0)))
    return np.concatenate([xy, xy + wh], 1)


@settings(max_examples=150, deadline=None)
@given(boxes(), boxes())
def test_iou_properties(a, b):
    iou = box_iou(a, b)
    assert ((iou >= 0) & (iou <= 1)).all()  # in [0, 1]
    np.testing.assert_array_equal(iou, box_iou(b, a).T)  # symmetric, exactly
    np.testing.assert_allclose(iou, torchvision_iou64(a, b), rtol=1e-4, atol=1e-5)
    positive = (a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1])
    np.testing.assert_allclose(box_iou_pairwise(a, a)[positive], 1.0, rtol=1e-6)  # a box with itself


BOX = np.array([[0, 0, 1, 1.0]])


@pytest.mark.parametrize(
    ("boxes1", "boxes2", "message"),
    [
        (np.zeros(4), BOX, r"boxes1 must be a 2D array with shape \(N, 4\), but got shape \(4,\)"),  # 1D
        (BOX, np.zeros((2, 5)), r"boxes2 must be a 2D array with shape \(N, 4\), but got shape \(2, 5\)"),  # 5 cols
        (np.array([[0, 0, np.nan, 1]]), BOX, r"boxes1 must be finite, but got NaN or inf at rows \[0\]"),  # NaN
        (BOX, np.array([[0, 0, 1, 1], [0, -np.inf, 1, 1]]), r"boxes2 must be finite.* at rows \[1\]"),  # -inf
        (np.array([[2, 0, 1, 1.0]]), BOX, r"boxes1 must be xyxy with x1 <= x2 and y1 <= y2, but row 0"),  # width < 0
        (BOX, np.array([[0, 3, 1, 1.0]]), r"boxes2 must be xyxy with x1 <= x2 .*negative width or height"),  # h < 0
        (np.ones((1, 4), bool), BOX, r"boxes1 must be a float or integer array, but got dtype bool"),  # bool
        (BOX, np.array([["0", "0", "1", "1"]]), r"boxes2 must be a float or integer array, but got dtype <U1"),  # str
    ],
)
def test_bad_input(boxes1, boxes2, message):
    for fn in (box_iou, box_iou_pairwise):
        with pytest.raises(ValueError, match=message):
            fn(boxes1, boxes2)


def test_pairwise_length_mismatch():
    with pytest.raises(ValueError, match=r"boxes2 must have as many rows as boxes1 \(1\), but got 2"):
        box_iou_pairwise(BOX, np.zeros((2, 4)))
