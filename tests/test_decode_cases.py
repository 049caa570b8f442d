"""YOLO decoders on hand-made outputs: thresholds, ties, extreme logits, dtypes, batches, dispatch by head."""

import warnings

import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode, decode_course, decode_yolov5, decode_yolov8
from tests.decode_refs import GRID_ANCHORS, PIXEL_ANCHORS, letterbox, logit, random_v5, sigmoid

T64 = Transform.identity((64, 64))


def one_cell(to: float, logits: tuple[float, ...], tx=0.0, tw=0.0) -> np.ndarray:
    """A (1, 5+C, 2, 2) course output, one anchor (1, 1) cell: the cell (0, 0) holds the given numbers, the other
    cells are background (objectness logit -30)."""
    raw = np.zeros((1, 5 + len(logits), 2, 2), np.float32)
    raw[0, 4] = -30.0
    raw[0, :, 0, 0] = [tx, 0.0, tw, 0.0, to, *logits]
    return raw


@pytest.mark.parametrize(
    ("raw", "conf", "expected_scores"),
    [
        # one class: probability 1, score = Pc = sigmoid(0) = 0.5 exactly, at the threshold: kept
        (one_cell(0.0, (3.0,)), 0.5, [0.5]),
        # the same score just below the threshold: dropped, an empty result
        (one_cell(0.0, (3.0,)), float(np.nextafter(np.float32(0.5), np.float32(1))), []),
        # Pc = 0.9 passes 0.25, but 4 equal logits give probability 0.25: score 0.225 is dropped
        (one_cell(logit(0.9), (1.0, 1.0, 1.0, 1.0)), 0.25, []),
        # the same cell at a lower threshold: kept with score Pc * 1/4
        (one_cell(logit(0.9), (1.0, 1.0, 1.0, 1.0)), 0.2, [np.float32(0.9) / 4]),
        # threshold 0: every cell passes, the background ones with score sigmoid(-30) * 1
        (one_cell(2.0, (0.0,)), 0.0, [sigmoid(2.0), sigmoid(-30.0), sigmoid(-30.0), sigmoid(-30.0)]),
        # threshold 1: only a score of exactly 1 could pass; sigmoid(30) rounds to 1 in float32 and passes
        (one_cell(30.0, (0.0,)), 1.0, [1.0]),
    ],
)
def test_course_threshold_edges(raw, conf, expected_scores):
    det = decode_course(raw, [T64], [(1.0, 1.0)], conf, 1.0)[0]
    np.testing.assert_allclose(det.scores, expected_scores, rtol=1e-6)
    assert det.xyxy.shape == (len(expected_scores), 4) and det.xyxy.dtype == np.float32


def two_cells(classes: tuple[int, int]) -> np.ndarray:
    """Two anchors of the same shape in the same cell: identical boxes, identical scores, the given classes."""
    raw = np.zeros((2, 7, 1, 1), np.float32)  # 2 anchors, C = 2, one cell
    raw[:, 4] = 2.0
    raw[0, 5 + classes[0]] = raw[1, 5 + classes[1]] = 4.0
    return raw.reshape(1, 14, 1, 1)


@pytest.mark.parametrize(
    ("raw", "agnostic", "expected_classes"),
    [
        # a tie, same class: the first anchor is kept, its twin suppressed
        (two_cells((1, 1)), False, [1]),
        # identical boxes of two classes: class-aware NMS keeps both, in candidate order
        (two_cells((0, 1)), False, [0, 1]),
        # the same, class-agnostic (the course's assignment): one box
        (two_cells((1, 0)), True, [1]),
    ],
)
def test_course_ties_and_classes(raw, agnostic, expected_classes):
    det = decode_course(raw, [Transform.identity((32, 32))], [(1.0, 1.0)] * 2, 0.5, 0.5, class_agnostic=agnostic)[0]
    assert det.class_ids.tolist() == expected_classes
    assert (det.xyxy == det.xyxy[0]).all()


@pytest.mark.parametrize(
    ("head", "outputs", "conf", "expected_scores"),
    [
        # YOLOv5: objectness 0.5 * class score 1.0 = 0.5, at the threshold: kept
        ("yolov5", [[[8, 8, 4, 4, 0.5, 1.0, 0.0]]], 0.5, [0.5]),
        # YOLOv5: objectness 0.9 passes, but 0.9 * 0.5 does not
        ("yolov5", [[[8, 8, 4, 4, 0.9, 0.5, 0.2]]], 0.5, []),
        # YOLOv5: the best class decides; one row, one box
        ("yolov5", [[[8, 8, 4, 4, 0.8, 0.25, 0.75]]], 0.5, [0.8 * 0.75]),
        # YOLOv8: the best class score 0.5 at the threshold: kept
        ("yolov8", [[[8, 20], [8, 20], [4, 4], [4, 4], [0.5, 0.1], [0.2, 0.4]]], 0.5, [0.5]),
        # YOLOv8: nothing passes: an empty result
        ("yolov8", [[[8, 20], [8, 20], [4, 4], [4, 4], [0.3, 0.1], [0.2, 0.4]]], 0.5, []),
        # YOLOv8: no anchor points at all (K = 0): an empty result
        ("yolov8", np.zeros((1, 6, 0)), 0.0, []),
    ],
)
def test_decoded_heads_edges(head, outputs, conf, expected_scores):
    det = decode(head, np.asarray(outputs, np.float32), [T64], conf, 0.5, class_names=("a", "b"))[0]
    np.testing.assert_allclose(det.scores, expected_scores, rtol=1e-6)
    assert det.class_names == ("a", "b") and det.xyxy.shape == (len(expected_scores), 4)


def test_extreme_logits_give_finite_boxes_without_warnings():
    # tx, ty, tw, th, to, c1, c2: exp(1000) overflows float32 in sigmoid(ty) and in exp(tw) unless handled.
    raw = np.array([1000.0, -1000.0, 1000.0, 1000.0, 1000.0, -1000.0, 1000.0], np.float32).reshape(1, 7, 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det = decode_course(raw, [T64], [(1.0, 1.0)], 0.5, 0.5)[0]
    # The center at (64, 0), the size exp(MAX_LOG_SIZE) anchors: the box covers the image once clipped to it.
    np.testing.assert_allclose(det.xyxy, [[0, 0, 64, 64]])
    assert det.class_ids.tolist() == [1]


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_other_float_dtypes_equal_float32(dtype):
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 2, (1, 16, 4, 4)).astype(dtype)  # the decoder computes in float32: same numbers, same result
    got = decode_course(raw, [T64], GRID_ANCHORS[:2], 0.2, 0.5)[0]
    expected = decode_course(raw.astype(np.float32), [T64], GRID_ANCHORS[:2], 0.2, 0.5)[0]
    assert len(got) > 0
    np.testing.assert_array_equal(got.xyxy, expected.xyxy)
    np.testing.assert_array_equal(got.scores, expected.scores)


def test_batch_uses_each_images_transform_and_equals_one_by_one():
    rng = np.random.default_rng(1)
    raw = rng.normal(0, 2, (3, 24, 5, 5)).astype(np.float32)
    ts = [letterbox((100, 300), (160, 160)), letterbox((300, 100), (160, 160)), Transform.identity((160, 160))]
    batch = decode("yolo-course", raw, ts, 0.3, 0.5, anchors=GRID_ANCHORS, class_names=("a", "b", "c"))
    for i, det in enumerate(batch):
        alone = decode_course(raw[i : i + 1], ts[i : i + 1], GRID_ANCHORS, 0.3, 0.5, class_names=("a", "b", "c"))[0]
        np.testing.assert_array_equal(det.xyxy, alone.xyxy)
        assert det.class_names == ("a", "b", "c")
        assert (det.xyxy[:, 2] <= ts[i].src_size[1]).all() and (det.xyxy[:, 3] <= ts[i].src_size[0]).all()


def test_empty_batch_and_max_det():
    assert decode("yolov8", np.zeros((0, 6, 10), np.float32), [], 0.25) == []
    rng = np.random.default_rng(2)
    out = np.concatenate([rng.uniform(0, 600, (2, 500)), np.full((2, 500), 5.0), rng.uniform(0, 1, (1, 500))])
    det = decode_yolov8(out[None].astype(np.float32), [Transform.identity((640, 640))], 0.0, 1.0, max_det=10)[0]
    top10 = np.sort(out[4].astype(np.float32))[::-1][:10]  # iou_threshold 1: nothing suppressed, the 10 best
    np.testing.assert_array_equal(det.scores, top10)


def test_dispatch_equals_the_head_functions():
    rng = np.random.default_rng(3)
    t = [Transform.identity((320, 320))]
    v5 = random_v5(rng, 100, 3)[None]
    v8 = v5[:, :, [0, 1, 2, 3, 5, 6, 7]].transpose(0, 2, 1).copy()
    raw = rng.normal(0, 2, (1, 16, 4, 4)).astype(np.float32)
    pairs = [
        (decode("yolov5", v5, t, 0.1, 0.5), decode_yolov5(v5, t, 0.1, 0.5)),
        (decode("yolov8", v8, t, 0.1, 0.5), decode_yolov8(v8, t, 0.1, 0.5)),
        (decode("yolo-course", raw, t, 0.1, 0.5, anchors=PIXEL_ANCHORS[:2], anchor_units="pixels"),
         decode_course(raw, t, PIXEL_ANCHORS[:2], 0.1, 0.5, anchor_units="pixels")),
    ]
    for (a,), (b,) in pairs:
        assert len(a) > 0
        np.testing.assert_array_equal(a.xyxy, b.xyxy)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)


def test_caller_arrays_are_not_modified():
    rng = np.random.default_rng(4)
    raw = rng.normal(0, 2, (1, 16, 4, 4)).astype(np.float32)
    v5 = random_v5(rng, 50, 2)[None]
    before = raw.copy(), v5.copy()
    decode_course(raw, [T64], GRID_ANCHORS[:2], 0.0, 0.5)
    decode_yolov5(v5, [T64], 0.0, 0.5)
    np.testing.assert_array_equal(raw, before[0])
    np.testing.assert_array_equal(v5, before[1])

