"""YOLO decoders: known boxes encoded into raw tensors and decoded back; a Python-loop decoder as reference."""

import math

import numpy as np
import pytest

from postprocess.boxes import Transform
from postprocess.decode import decode, decode_course, decode_yolov5, decode_yolov8
from tests.test_nms import ref_batched_nms

ANCHORS = [(1.0, 1.0), (2.5, 1.5), (4.0, 5.0)]  # grid cells
LETTERBOX = Transform(0.5, 0.5, 0.0, 48.0, (640, 832), (416, 416))  # an 832x640 image letterboxed into 416x416


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def encode_course(boxes, classes, num_classes, grid, input_size, anchors, units="grid", pc=0.99):
    """Build a raw (1, A*(5+C), S, S) tensor holding the given boxes (xyxy input pixels), background elsewhere."""
    a = len(anchors)
    raw = np.full((a, 5 + num_classes, grid, grid), -8.0, dtype=np.float64)
    raw[:, :4] = 0.0
    raw[:, 5:] = 0.0
    h_in, w_in = input_size
    for (x1, y1, x2, y2), c in zip(boxes, classes, strict=True):
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        col, row = int(cx / w_in * grid), int(cy / h_in * grid)
        k = (col * 7 + row * 3) % a  # any anchor: the decoder must use the one it is given
        aw, ah = anchors[k]
        if units == "grid":
            aw, ah = aw * w_in / grid, ah * h_in / grid
        raw[k, 0, row, col] = logit(cx / w_in * grid - col)
        raw[k, 1, row, col] = logit(cy / h_in * grid - row)
        raw[k, 2, row, col] = math.log(w / aw)
        raw[k, 3, row, col] = math.log(h / ah)
        raw[k, 4, row, col] = logit(pc)
        raw[k, 5 + c, row, col] = 6.0
    return raw.reshape(1, a * (5 + num_classes), grid, grid).astype(np.float32)


def separated_boxes(rng, n, grid, size):
    """n boxes whose centers sit in distinct cells, well inside them (no exact cell edges)."""
    cells = rng.choice(grid * grid, n, replace=False)
    cell = size / grid
    cx = (cells % grid + rng.uniform(0.2, 0.8, n)) * cell
    cy = (cells // grid + rng.uniform(0.2, 0.8, n)) * cell
    w, h = rng.uniform(8, size / 3, n), rng.uniform(8, size / 3, n)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("units", ["grid", "pixels"])
def test_course_head_round_trip(seed, units):
    rng = np.random.default_rng(seed)
    boxes = separated_boxes(rng, 4, 13, 416)
    classes = rng.integers(0, 3, 4)
    anchors = ANCHORS if units == "grid" else [(32.0, 32.0), (80.0, 48.0), (128.0, 160.0)]
    raw = encode_course(boxes, classes, 3, 13, (416, 416), anchors, units)
    det = decode_course(raw, [LETTERBOX], anchors, 0.5, 1.0, anchor_units=units)[0]
    expected = (boxes - [0, 48, 0, 48]) / 0.5
    expected = np.clip(expected, 0, [832, 640, 832, 640])
    order = np.argsort(expected.sum(1))
    got = np.argsort(det.xyxy.sum(1))
    assert len(det) == 4
    np.testing.assert_allclose(det.xyxy[got], expected[order], atol=1e-2)
    assert det.class_ids[got].tolist() == classes[order].tolist()
    # score = Pc * softmax probability of the class: 0.99 * e^6 / (e^6 + 2)
    np.testing.assert_allclose(det.scores, 0.99 * math.exp(6) / (math.exp(6) + 2), rtol=1e-5)


def test_course_head_grid_last_layout_equals_channels_first():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 2, (2, 3 * 8, 7, 7)).astype(np.float32)
    grid_last = raw.reshape(2, 3, 8, 7, 7).transpose(0, 3, 4, 1, 2)  # (B, S, S, A, 5+C)
    t = [Transform.identity((224, 224))] * 2
    a = decode_course(raw, t, ANCHORS, 0.3, 0.5)
    b = decode_course(grid_last, t, ANCHORS, 0.3, 0.5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.xyxy, y.xyxy)
        np.testing.assert_array_equal(x.class_ids, y.class_ids)


def ref_decode_course(raw, anchors, conf, iou, size):
    """The course's recipe, one cell and one anchor at a time, in float64."""
    a = len(anchors)
    _, ch, s, _ = raw.shape
    c = ch // a - 5
    r = raw[0].reshape(a, 5 + c, s, s).astype(np.float64)
    boxes, scores, classes = [], [], []
    for k in range(a):
        for row in range(s):
            for col in range(s):
                t = r[k, :, row, col]
                pc = 1 / (1 + math.exp(-t[4]))
                e = [math.exp(v - max(t[5:])) for v in t[5:]]
                probs = [v / sum(e) for v in e]
                best = max(range(c), key=lambda j: probs[j])
                score = pc * probs[best]
                if score < conf:
                    continue
                cx = (1 / (1 + math.exp(-t[0])) + col) / s * size
                cy = (1 / (1 + math.exp(-t[1])) + row) / s * size
                w = anchors[k][0] * math.exp(t[2]) * size / s
                h = anchors[k][1] * math.exp(t[3]) * size / s
                boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])
                scores.append(score)
                classes.append(best)
    boxes, scores, classes = np.array(boxes).reshape(-1, 4), np.array(scores), np.array(classes, dtype=np.int64)
    keep = ref_batched_nms(boxes, scores, classes, iou) if len(boxes) else []
    return boxes[keep], scores[keep], classes[keep]


@pytest.mark.parametrize("seed", range(15))
def test_course_head_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 1.5, (1, 3 * 7, 5, 5)).astype(np.float32)  # C = 2, S = 5
    boxes, scores, classes = ref_decode_course(raw, ANCHORS, 0.2, 0.5, 160)
    det = decode_course(raw, [Transform.identity((160, 160))], ANCHORS, 0.2, 0.5)[0]
    expected = np.clip(boxes, 0, 160)
    np.testing.assert_allclose(det.xyxy, expected, atol=1e-3)
    np.testing.assert_allclose(det.scores, scores, rtol=1e-5)
    assert det.class_ids.tolist() == classes.tolist()


def encode_v5(boxes, classes, num_classes, k=50, rng=None):
    out = np.zeros((1, k, 5 + num_classes), dtype=np.float32)
    out[0, :, :4] = [100, 100, 10, 10]
    out[0, :, 4] = 0.01
    for i, ((x1, y1, x2, y2), c) in enumerate(zip(boxes, classes, strict=True)):
        out[0, i, :4] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[0, i, 4] = 0.9
        out[0, i, 5 + c] = 0.8
    return out


@pytest.mark.parametrize("seed", range(5))
def test_yolov5_round_trip(seed):
    rng = np.random.default_rng(seed)
    boxes = separated_boxes(rng, 3, 4, 640)
    classes = rng.integers(0, 4, 3)
    raw = encode_v5(boxes, classes, 4)
    det = decode_yolov5(raw, [Transform.identity((640, 640))], 0.5, 0.5)[0]
    order, got = np.argsort(boxes[:, 0]), np.argsort(det.xyxy[:, 0])
    np.testing.assert_allclose(det.xyxy[got], np.clip(boxes[order], 0, 640), atol=1e-3)
    assert det.class_ids[got].tolist() == classes[order].tolist()
    np.testing.assert_allclose(det.scores, 0.9 * 0.8, rtol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_yolov8_round_trip_and_equals_v5_layout(seed):
    rng = np.random.default_rng(seed)
    boxes = separated_boxes(rng, 3, 4, 640)
    classes = rng.integers(0, 4, 3)
    v5 = encode_v5(boxes, classes, 4)
    v8 = np.concatenate([v5[..., :4], v5[..., 4:5] * v5[..., 5:]], axis=2).transpose(0, 2, 1)  # (1, 4+C, K)
    t = [LETTERBOX]
    a, b = decode_yolov8(v8, t, 0.5, 0.5)[0], decode_yolov5(v5, t, 0.5, 0.5)[0]
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-4)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    assert len(a) == 3


@pytest.mark.parametrize("seed", range(10))
def test_yolov8_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    out = rng.uniform(0, 1, (1, 4 + 3, 200)).astype(np.float32)
    out[0, :2] *= 320
    out[0, 2:4] = out[0, 2:4] * 60 + 1
    out[0, 4:] **= 3
    boxes, scores, classes = [], [], []
    for k in range(200):
        col = out[0, :, k].astype(np.float64)
        best = int(np.argmax(col[4:]))
        if col[4 + best] >= 0.3:
            boxes.append([col[0] - col[2] / 2, col[1] - col[3] / 2, col[0] + col[2] / 2, col[1] + col[3] / 2])
            scores.append(col[4 + best])
            classes.append(best)
    boxes, scores, classes = np.array(boxes), np.array(scores), np.array(classes)
    keep = ref_batched_nms(boxes, scores, classes, 0.45)
    det = decode_yolov8(out, [Transform.identity((320, 320))], 0.3, 0.45)[0]
    np.testing.assert_allclose(det.xyxy, np.clip(boxes[keep], 0, 320), atol=1e-3)
    assert det.class_ids.tolist() == classes[keep].tolist()


def test_decode_dispatch_batches_and_empty_results():
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 1, (3, 3 * 7, 5, 5)).astype(np.float32)
    t = [Transform.identity((160, 160))] * 3
    out = decode("yolo-course", raw, t, 0.3, 0.5, anchors=ANCHORS, class_names=("a", "b"))
    assert len(out) == 3
    assert all(d.class_names == ("a", "b") for d in out)
    # Nothing passes a threshold of 1: every image gets an empty, typed Detections.
    empty = decode("yolov8", np.zeros((2, 6, 10), np.float32), t[:2], conf_threshold=1.0)
    assert [len(d) for d in empty] == [0, 0]
    assert empty[0].xyxy.shape == (0, 4)


def test_max_det_caps_each_image():
    rng = np.random.default_rng(1)
    out = rng.uniform(0, 1, (1, 5, 500)).astype(np.float32)
    out[0, :2] *= 640
    out[0, 2:4] = 5
    det = decode_yolov8(out, [Transform.identity((640, 640))], 0.0, 0.5, max_det=10)[0]
    assert len(det) == 10
    assert (np.diff(det.scores) <= 0).all()


T1 = [Transform.identity((64, 64))]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # unknown head name
        (lambda: decode("ssd", np.zeros((1, 6, 4)), T1), r"head must be one of \('yolo-course', 'yolov5', 'yolov8'\)"),
        # course head without anchors
        (lambda: decode("yolo-course", np.zeros((1, 8, 2, 2)), T1), r"anchors must be given"),
        # channel count not a multiple of the anchors
        (lambda: decode_course(np.zeros((1, 10, 2, 2)), T1, ANCHORS), r"A\*\(5\+C\) channels with A = 3"),
        # grid-last layout with the wrong anchor count
        (lambda: decode_course(np.zeros((1, 2, 2, 2, 8)), T1, ANCHORS), r"3 anchors on axis 3"),
        # bad anchor units
        (lambda: decode_course(np.zeros((1, 24, 2, 2)), T1, ANCHORS, anchor_units="m"), r"anchor_units must be"),
        # negative anchor
        (lambda: decode_course(np.zeros((1, 8, 2, 2)), T1, [(-1, 2)]), r"anchors must be \(A, 2\) positive"),
        # class names that do not match the output
        (lambda: decode_yolov8(np.zeros((1, 6, 4)), T1, class_names=("a",)), r"class_names must have 2 entries"),
        # wrong rank for yolov8
        (lambda: decode_yolov8(np.zeros((6, 4)), T1), r"shaped \(B, 4\+C, K\), but got float64 \(6, 4\)"),
        # no class channel
        (lambda: decode_yolov5(np.zeros((1, 4, 5)), T1), r"\(B, K, 5\+C\) with C >= 1"),
        # NaN in the model output
        (lambda: decode_yolov8(np.full((1, 6, 4), np.nan), T1), r"outputs must be finite"),
        # one transform for two images
        (lambda: decode_yolov8(np.zeros((2, 6, 4)), T1), r"one Transform per image \(2\), but got 1"),
        # threshold outside [0, 1]
        (lambda: decode_yolov8(np.zeros((1, 6, 4)), T1, conf_threshold=2), r"conf_threshold must be in \[0, 1\]"),
        # integer output
        (lambda: decode_yolov8(np.zeros((1, 6, 4), np.int32), T1), r"must be a float array"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
