"""Box formats, areas, clipping and the original <-> network-input map, against hand-written references."""

import numpy as np
import pytest

from edgepipe.postprocess.boxes import (
    Transform,
    box_area,
    box_convert,
    boxes_to_input,
    boxes_to_original,
    clip_boxes,
    denormalize_boxes,
    normalize_boxes,
)


def random_xyxy(rng: np.random.Generator, n: int) -> np.ndarray:
    xy = rng.uniform(0, 500, (n, 2))
    wh = rng.uniform(0, 200, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def reference_convert(box: list[float], in_fmt: str, out_fmt: str) -> list[float]:
    """One box through plain Python arithmetic."""
    if in_fmt == "xyxy":
        x1, y1, x2, y2 = box
    elif in_fmt == "xywh":
        x1, y1, x2, y2 = box[0], box[1], box[0] + box[2], box[1] + box[3]
    else:
        x1, y1, x2, y2 = box[0] - box[2] / 2, box[1] - box[3] / 2, box[0] + box[2] / 2, box[1] + box[3] / 2
    if out_fmt == "xyxy":
        return [x1, y1, x2, y2]
    if out_fmt == "xywh":
        return [x1, y1, x2 - x1, y2 - y1]
    return [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]


@pytest.mark.parametrize("in_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("out_fmt", ["xyxy", "xywh", "cxcywh"])
@pytest.mark.parametrize("seed", range(5))
def test_box_convert_matches_reference(in_fmt, out_fmt, seed):
    rng = np.random.default_rng(seed)
    boxes = np.array([reference_convert(b, "xyxy", in_fmt) for b in random_xyxy(rng, 50).tolist()])
    got = box_convert(boxes, in_fmt, out_fmt)
    expected = np.array([reference_convert(b, in_fmt, out_fmt) for b in boxes.tolist()])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_box_convert_round_trip_and_no_mutation(fmt):
    boxes = random_xyxy(np.random.default_rng(0), 20)
    before = boxes.copy()
    back = box_convert(box_convert(boxes, "xyxy", fmt), fmt, "xyxy")
    np.testing.assert_allclose(back, boxes, atol=1e-3)
    np.testing.assert_array_equal(boxes, before)
    assert box_convert(boxes, "xyxy", "xyxy") is not boxes


def test_empty_input_gives_typed_empty_output():
    empty = np.zeros((0, 4))
    assert box_convert(empty, "xyxy", "cxcywh").shape == (0, 4)
    assert box_area(empty).shape == (0,)
    assert box_area(empty).dtype == np.float32
    assert clip_boxes(empty, (10, 10)).shape == (0, 4)


def test_box_area_matches_loop_and_large_coordinates():
    boxes = random_xyxy(np.random.default_rng(1), 100).astype(np.float32)
    expected = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes.tolist()]
    np.testing.assert_allclose(box_area(boxes), expected, rtol=1e-6)
    # Integer pixels far apart: computed without overflow.
    big = np.array([[0, 0, 100_000, 100_000]], dtype=np.int32)
    assert box_area(big)[0] == pytest.approx(1e10, rel=1e-6)


def test_normalize_is_inverse_of_denormalize():
    boxes = random_xyxy(np.random.default_rng(2), 10)
    norm = normalize_boxes(boxes, (480, 640))
    np.testing.assert_allclose(norm[:, 0], boxes[:, 0] / 640, rtol=1e-6)
    np.testing.assert_allclose(norm[:, 1], boxes[:, 1] / 480, rtol=1e-6)
    np.testing.assert_allclose(denormalize_boxes(norm, (480, 640)), boxes, rtol=1e-5)


def test_clip_boxes():
    boxes = np.array([[-5, -5, 20, 30], [630, 470, 700, 500]], dtype=np.float32)
    np.testing.assert_array_equal(clip_boxes(boxes, (480, 640)), [[0, 0, 20, 30], [630, 470, 640, 480]])


def test_letterbox_transform_round_trip():
    # 640x480 frame letterboxed into 416x416: scale 0.65, 52 px of padding above and below.
    t = Transform(scale_x=0.65, scale_y=0.65, pad_x=0.0, pad_y=52.0, src_size=(480, 640), dst_size=(416, 416))
    boxes = random_xyxy(np.random.default_rng(3), 30) * [1.2, 0.9, 1.2, 0.9]
    boxes = np.clip(boxes, 0, [640, 480, 640, 480])
    net = boxes_to_input(boxes, t)
    np.testing.assert_allclose(net[:, 1], boxes[:, 1] * 0.65 + 52, rtol=1e-5)
    np.testing.assert_allclose(boxes_to_original(net, t), boxes, atol=1e-3)


def test_boxes_to_original_clips_unless_told():
    t = Transform.identity((100, 100))
    boxes = np.array([[-10, 5, 120, 50]], dtype=np.float32)
    np.testing.assert_array_equal(boxes_to_original(boxes, t), [[0, 5, 100, 50]])
    np.testing.assert_array_equal(boxes_to_original(boxes, t, clip=False), boxes)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # one box without the batch axis
        (lambda: box_convert(np.array([1, 2, 3, 4.0]), "xyxy", "xywh"), r"shape \(N, 4\), but got shape \(4,\)"),
        # five columns
        (lambda: box_area(np.zeros((3, 5))), r"shape \(N, 4\), but got shape \(3, 5\)"),
        # unknown format name
        (lambda: box_convert(np.zeros((1, 4)), "xyxy", "yolo"), r"out_fmt must be one of .* but got 'yolo'"),
        # NaN coordinate
        (lambda: box_area(np.array([[0, 0, np.nan, 1.0]])), r"finite, but got NaN or inf at rows \[0\]"),
        # x2 < x1: negative width
        (lambda: box_area(np.array([[10, 0, 5, 1.0]])), r"x1 <= x2 .* row 0"),
        # negative width in xywh
        (lambda: box_convert(np.array([[0, 0, -1, 1.0]]), "xywh", "xyxy"), r"width and height >= 0"),
        # strings are not boxes
        (lambda: box_area(np.array([["a", "b", "c", "d"]])), r"float or integer array, but got dtype"),
        # bad image size
        (lambda: clip_boxes(np.zeros((1, 4)), (0, 10)), r"image_size must be \(height, width\)"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
