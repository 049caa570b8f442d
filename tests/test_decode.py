"""YOLO decoders: known boxes encoded into raw tensors and decoded back; Python-loop decoders as references."""

import math
import warnings

import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode, decode_course, decode_yolov5, decode_yolov8

GRID_ANCHORS = [(1.0, 1.0), (2.5, 1.5), (4.0, 5.0)]  # grid cells
PIXEL_ANCHORS = [(32.0, 32.0), (80.0, 48.0), (128.0, 160.0)]  # network-input pixels


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def letterbox(src: tuple[int, int], dst: tuple[int, int]) -> Transform:
    """The letterbox of an image of size src (h, w) into dst (h, w): one scale, centered padding."""
    scale = min(dst[0] / src[0], dst[1] / src[1])
    return Transform(scale, scale, (dst[1] - src[1] * scale) / 2, (dst[0] - src[0] * scale) / 2, src, dst)


def to_original(box, t: Transform) -> list[float]:
    """One xyxy box from network-input pixels to original pixels, clipped to the original image (float64)."""
    h, w = t.src_size
    xs = [min(max((x - t.pad_x) / t.scale_x, 0), w) for x in (box[0], box[2])]
    ys = [min(max((y - t.pad_y) / t.scale_y, 0), h) for y in (box[1], box[3])]
    return [xs[0], ys[0], xs[1], ys[1]]


def ref_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def ref_select(cands, conf, iou, max_det=300, agnostic=False) -> list:
    """cands: [(box xyxy, score, class)] in candidate order. Score filter, greedy NMS per class, cap; loops."""
    order = sorted((i for i, c in enumerate(cands) if c[1] >= conf), key=lambda i: (-cands[i][1], i))
    kept = []
    for i in order:
        box, _, cls = cands[i]
        if all(ref_iou(box, cands[k][0]) <= iou or (cands[k][2] != cls and not agnostic) for k in kept):
            kept.append(i)
    return [cands[i] for i in kept[:max_det]]


def assert_matches(det, expected, t: Transform) -> None:
    """det: Detections. expected: [(box in input pixels, score, class)] by descending score."""
    boxes = np.array([to_original(b, t) for b, _, _ in expected]).reshape(-1, 4)
    assert len(det) == len(expected)
    np.testing.assert_allclose(det.xyxy, boxes, atol=1e-3, rtol=1e-6)
    np.testing.assert_allclose(det.scores, [s for _, s, _ in expected], rtol=1e-5, atol=1e-7)
    assert det.class_ids.tolist() == [c for _, _, c in expected]


def ref_course(raw, anchors, units, t: Transform) -> list:
    """The course's recipe, one anchor and one cell at a time in float64. raw: (A, 5+C, S_h, S_w)."""
    a, ch, s_h, s_w = raw.shape
    cell_h, cell_w = t.dst_size[0] / s_h, t.dst_size[1] / s_w
    cands = []
    for k in range(a):
        aw, ah = anchors[k]
        if units == "grid":
            aw, ah = aw * cell_w, ah * cell_h
        for row in range(s_h):
            for col in range(s_w):
                tx, ty, tw, th, to, *logits = (float(v) for v in raw[k, :, row, col])
                e = [math.exp(v - max(logits)) for v in logits]
                best = max(range(ch - 5), key=lambda j: e[j])
                cx, cy = (sigmoid(tx) + col) * cell_w, (sigmoid(ty) + row) * cell_h
                w, h = aw * math.exp(tw), ah * math.exp(th)
                cands.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], sigmoid(to) * e[best] / sum(e), best))
    return cands


def ref_yolov5(out) -> list:
    """out: (K, 5+C) of one image, loops."""
    cands = []
    for cx, cy, w, h, obj, *cls in out.astype(np.float64).tolist():
        best = max(range(len(cls)), key=lambda j: cls[j])
        cands.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], obj * cls[best], best))
    return cands


def ref_yolov8(out) -> list:
    """out: (4+C, K) of one image, loops."""
    cands = []
    for cx, cy, w, h, *cls in out.T.astype(np.float64).tolist():
        best = max(range(len(cls)), key=lambda j: cls[j])
        cands.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], cls[best], best))
    return cands


def to_cells(raw: np.ndarray, a: int) -> np.ndarray:
    """(B, A*(5+C), S_h, S_w) to the course's (B, S_h, S_w, A, 5+C)."""
    b, ch, s_h, s_w = raw.shape
    return raw.reshape(b, a, ch // a, s_h, s_w).transpose(0, 3, 4, 1, 2).copy()


# ---------------------------------------------------------------- round trips: known boxes, encoded, decoded back


def known_boxes(rng, t: Transform, grid: tuple[int, int], n: int):
    """n boxes inside the original image whose centers, in network-input pixels, fall in distinct grid cells away
    from the cell edges. Returns original boxes (n, 4) float64 xyxy, input boxes (n, 4), cells [(row, col)]."""
    h0, w0 = t.src_size
    cell_h, cell_w = t.dst_size[0] / grid[0], t.dst_size[1] / grid[1]
    originals, inputs, cells = [], [], []
    while len(originals) < n:
        w, h = rng.uniform(6, w0 / 3), rng.uniform(6, h0 / 3)
        x1, y1 = rng.uniform(0, w0 - w), rng.uniform(0, h0 - h)
        box = np.array([x1, y1, x1 + w, y1 + h])
        inp = box * ([t.scale_x, t.scale_y] * 2) + [t.pad_x, t.pad_y] * 2
        gx, gy = (inp[0] + inp[2]) / 2 / cell_w, (inp[1] + inp[3]) / 2 / cell_h
        cell = (int(gy), int(gx))
        if cell not in cells and 0.05 < gx % 1 < 0.95 and 0.05 < gy % 1 < 0.95:
            originals.append(box)
            inputs.append(inp)
            cells.append(cell)
    return np.array(originals), np.array(inputs), cells


def encode_course(inputs, cells, classes, pcs, anchor_ids, anchors, units, num_classes, grid, input_size):
    """The inverse of the course head: a raw (1, A*(5+C), S_h, S_w) float32 tensor holding the given boxes
    (xyxy input pixels) at their cells and anchors, class logit 6 for the class (0 for the others), Pc = pcs;
    every other cell and anchor is background (objectness logit -12)."""
    a = len(anchors)
    raw = np.zeros((a, 5 + num_classes, *grid))
    raw[:, 4] = -12.0
    cell_h, cell_w = input_size[0] / grid[0], input_size[1] / grid[1]
    for (x1, y1, x2, y2), (row, col), c, pc, k in zip(inputs, cells, classes, pcs, anchor_ids, strict=True):
        aw, ah = anchors[k]
        if units == "grid":
            aw, ah = aw * cell_w, ah * cell_h
        raw[k, 0, row, col] = logit((x1 + x2) / 2 / cell_w - col)
        raw[k, 1, row, col] = logit((y1 + y2) / 2 / cell_h - row)
        raw[k, 2, row, col] = math.log((x2 - x1) / aw)
        raw[k, 3, row, col] = math.log((y2 - y1) / ah)
        raw[k, 4, row, col] = logit(pc)
        raw[k, 5 + c, row, col] = 6.0
    return raw.reshape(1, -1, *grid).astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("units", ["grid", "pixels"])
@pytest.mark.parametrize("layout", ["channels", "cells"])
def test_course_head_decodes_known_boxes(seed, units, layout):
    rng = np.random.default_rng(seed)
    grid, size = ((13, 13), (416, 416)) if seed % 2 else ((10, 12), (320, 416))  # square cells and 32 x 34.7 px
    src = (int(rng.integers(200, 900)), int(rng.integers(200, 900)))
    t = letterbox(src, size)
    n, num_classes = 5, 3
    originals, inputs, cells = known_boxes(rng, t, grid, n)
    classes, pcs = rng.integers(0, num_classes, n), rng.uniform(0.6, 0.99, n)
    anchors = GRID_ANCHORS if units == "grid" else PIXEL_ANCHORS
    anchor_ids = rng.integers(0, 3, n)  # any anchor: the decoder must use the one the cell's channels belong to
    raw = encode_course(inputs, cells, classes, pcs, anchor_ids, anchors, units, num_classes, grid, size)
    raw = to_cells(raw, 3) if layout == "cells" else raw
    det = decode_course(raw, [t], anchors, 0.5, 1.0, anchor_units=units, layout=layout)[0]
    scores = pcs * math.exp(6) / (math.exp(6) + num_classes - 1)  # Pc * softmax probability of the class
    order = np.argsort(-scores)
    np.testing.assert_allclose(det.xyxy, originals[order], atol=1e-3)
    np.testing.assert_allclose(det.scores, scores[order], rtol=1e-5)
    assert det.class_ids.tolist() == classes[order].tolist()


def encode_rows(rng, inputs, classes, objectness, class_scores, k, num_classes):
    """A decoded YOLOv5-style (K, 5+C) output: the boxes (xyxy input pixels) at random rows with the given
    objectness and class score; background rows with objectness < 0.1 and class scores < 0.5 elsewhere."""
    out = np.concatenate(
        [rng.uniform(50, 300, (k, 2)), rng.uniform(5, 50, (k, 2)), rng.uniform(0, 0.1, (k, 1)),
         rng.uniform(0, 0.5, (k, num_classes))], axis=1,
    )
    rows = rng.choice(k, len(inputs), replace=False)
    for r, (x1, y1, x2, y2), c, obj, cls in zip(rows, inputs, classes, objectness, class_scores, strict=True):
        out[r, :5] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, obj]
        out[r, 5 + c] = cls
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("head", ["yolov5", "yolov8"])
def test_decoded_heads_decode_known_boxes(seed, head):
    rng = np.random.default_rng(seed)
    t = letterbox((int(rng.integers(200, 900)), int(rng.integers(200, 900))), (320, 320))
    originals, inputs, _ = known_boxes(rng, t, (8, 8), 4)
    classes, obj, cls = rng.integers(0, 4, 4), rng.uniform(0.7, 0.99, 4), rng.uniform(0.6, 0.95, 4)
    v5 = encode_rows(rng, inputs, classes, obj, cls, 200, 4)
    if head == "yolov5":
        det = decode_yolov5(v5[None], [t], 0.2, 1.0)[0]
    else:
        v8 = np.concatenate([v5[:, :4], v5[:, 4:5] * v5[:, 5:]], axis=1).T  # (4+C, K) class scores, no objectness
        det = decode_yolov8(v8[None], [t], 0.2, 1.0)[0]
    scores = obj.astype(np.float32) * cls.astype(np.float32)  # objectness * class score, as stored (float32)
    order = np.argsort(-scores)
    np.testing.assert_allclose(det.xyxy, originals[order], atol=1e-3)
    np.testing.assert_allclose(det.scores, scores[order], rtol=1e-6)
    assert det.class_ids.tolist() == classes[order].tolist()


# ---------------------------------------------------------------- against the loop references, random outputs


@pytest.mark.parametrize("seed", range(20))
def test_course_head_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    a, c, s_h, s_w = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(2, 7)), int(rng.integers(2, 7))
    units = ("grid", "pixels")[seed % 2]
    anchors = rng.uniform(0.5, 4, (a, 2)) * (1 if units == "grid" else 32)
    raw = rng.normal(0, 1.5, (2, a, 5 + c, s_h, s_w))
    raw[:, :, 4] = rng.normal(-1, 2.5, (2, a, s_h, s_w))
    raw = raw.astype(np.float32)
    ts = [letterbox((int(rng.integers(100, 500)), int(rng.integers(100, 500))), (32 * s_h, 40 * s_w)) for _ in "ab"]
    conf, iou = float(rng.choice([0.05, 0.2, 0.5])), float(rng.choice([0.3, 0.5, 0.7]))
    max_det, agnostic = int(rng.choice([4, 300])), bool(seed % 3 == 0)
    layout = ("channels", "cells")[seed % 4 // 2]
    flat = raw.reshape(2, a * (5 + c), s_h, s_w)
    got = decode_course(to_cells(flat, a) if layout == "cells" else flat, ts, anchors, conf, iou, max_det,
                        anchor_units=units, class_agnostic=agnostic, layout=layout)
    for image, t, det in zip(raw, ts, got, strict=True):
        assert_matches(det, ref_select(ref_course(image, anchors, units, t), conf, iou, max_det, agnostic), t)


def random_v5(rng, k, c):
    """(K, 5+C) float32: boxes anywhere in 320 px, objectness and class scores mostly low (uniform cubed)."""
    return np.concatenate(
        [rng.uniform(0, 320, (k, 2)), rng.uniform(1, 80, (k, 2)), rng.uniform(0, 1, (k, 1 + c)) ** 3], axis=1
    ).astype(np.float32)


@pytest.mark.parametrize("seed", range(15))
def test_yolov5_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    c, conf, iou = int(rng.integers(1, 6)), float(rng.choice([0.01, 0.1, 0.3])), float(rng.choice([0.3, 0.6]))
    out = np.stack([random_v5(rng, 150, c) for _ in range(2)])
    ts = [letterbox((int(rng.integers(100, 700)), int(rng.integers(100, 700))), (320, 320)) for _ in "ab"]
    got = decode_yolov5(out, ts, conf, iou, class_agnostic=bool(seed % 2))
    for image, t, det in zip(out, ts, got, strict=True):
        assert_matches(det, ref_select(ref_yolov5(image), conf, iou, agnostic=bool(seed % 2)), t)


@pytest.mark.parametrize("seed", range(15))
def test_yolov8_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    c, conf, iou = int(rng.integers(1, 6)), float(rng.choice([0.01, 0.1, 0.3])), float(rng.choice([0.3, 0.6]))
    out = np.stack([random_v5(rng, 150, c)[:, [0, 1, 2, 3, *range(5, 5 + c)]].T for _ in range(2)])  # (2, 4+C, K)
    ts = [letterbox((int(rng.integers(100, 700)), int(rng.integers(100, 700))), (320, 320)) for _ in "ab"]
    max_det = int(rng.choice([5, 300]))
    got = decode_yolov8(out, ts, conf, iou, max_det=max_det)
    for image, t, det in zip(out, ts, got, strict=True):
        assert_matches(det, ref_select(ref_yolov8(image), conf, iou, max_det), t)


# ---------------------------------------------------------------- hand-made cases

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


# ---------------------------------------------------------------- errors

T1 = [T64]
Z8 = np.zeros((1, 8, 2, 2), np.float32)  # a course output, A = 1, C = 3
ONE = [(1.0, 1.0)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        # unknown head name: the known ones are listed
        (lambda: decode("ssd", np.zeros((1, 6, 4)), T1), r"head must be one of \('yolo-course', 'yolov5', 'yolov8'\)"),
        # course head without anchors
        (lambda: decode("yolo-course", Z8, T1), r"anchors must be given as an \(A, 2\) array"),
        # anchors for a head that has none
        (lambda: decode("yolov8", np.zeros((1, 6, 4)), T1, anchors=ONE), r"anchors and layout belong to the yolo-c"),
        # a course layout for another head
        (lambda: decode("yolov5", np.zeros((1, 4, 6)), T1, layout="cells"), r"layout=.cells. for head .yolov5."),
        # unknown layout
        (lambda: decode_course(Z8, T1, ONE, layout="nhwc"), r"layout must be one of \('channels', 'cells'\)"),
        # the channels layout given a 5-D output
        (lambda: decode_course(np.zeros((1, 2, 2, 1, 8)), T1, ONE), r"\(B, A\*\(5\+C\), S_h, S_w\), a 4-D array"),
        # channel count not a multiple of the anchors
        (lambda: decode_course(np.zeros((1, 10, 2, 2)), T1, GRID_ANCHORS), r"10 channels is not a multiple of 3"),
        # channels for A = 3 anchors but no class (5 per anchor)
        (lambda: decode_course(np.zeros((1, 15, 2, 2)), T1, GRID_ANCHORS), r"with C >= 1, but got .*so C = 0"),
        # the cells layout with the wrong anchor count
        (lambda: decode_course(np.zeros((1, 2, 2, 2, 8)), T1, GRID_ANCHORS, layout="cells"), r"A = 3 anchors on axis"),
        # class_names that do not match the course output's classes
        (lambda: decode_course(Z8, T1, ONE, class_names=("a",)), r"C = 1 \(the number of class_names\).*so C = 3"),
        # bad anchor units
        (lambda: decode_course(Z8, T1, ONE, anchor_units="m"), r"anchor_units must be one of \('grid', 'pixels'\)"),
        # a negative anchor
        (lambda: decode_course(Z8, T1, [(-1.0, 2.0)]), r"anchors must hold finite sizes > 0, but row 0 is \[-1.0, 2"),
        # anchors not (A, 2)
        (lambda: decode_course(Z8, T1, [1.0, 2.0]), r"anchors must be an \(N, 2\) array .* got shape \(2,\)"),
        # YOLOv8 output given transposed, (B, K, 4+C): C does not match class_names, the layout is named
        (lambda: decode_yolov8(np.zeros((1, 10, 7)), T1, class_names=("a", "b", "c")), r"\(B, 4\+C, K\) with C = 3"),
        # YOLOv8 without class rows
        (lambda: decode_yolov8(np.zeros((1, 4, 9)), T1), r"\(B, 4\+C, K\) with C >= 1, but got shape \(1, 4, 9\)"),
        # YOLOv8 with a wrong rank
        (lambda: decode_yolov8(np.zeros((6, 4)), T1), r"\(B, 4\+C, K\), a 3-D array, but got shape \(6, 4\)"),
        # YOLOv5 without a class column
        (lambda: decode_yolov5(np.zeros((1, 3, 5)), T1), r"\(B, K, 5\+C\) with C >= 1"),
        # YOLOv5 with class_names that do not match
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), T1, class_names=("a",)), r"\(B, K, 5\+C\) with C = 1"),
        # a negative width: a wrong layout or head
        (lambda: decode_yolov5(np.array([[[8, 8, -4, 4, 0.9, 0.9]]]), T1), r"w, h >= 0, but got a negative size"),
        # NaN in the model output
        (lambda: decode_yolov8(np.full((1, 6, 4), np.nan), T1), r"outputs must be finite, but got NaN or inf"),
        # inf in the course output
        (lambda: decode_course(np.where(Z8 == 0, np.inf, 0), T1, ONE), r"outputs must be finite"),
        # an integer output
        (lambda: decode_yolov8(np.zeros((1, 6, 4), np.int32), T1), r"float16, float32 or float64 .*got dtype int32"),
        # one transform for two images
        (lambda: decode_yolov8(np.zeros((2, 6, 4)), T1), r"one Transform per image \(2\), but got 1"),
        # something else than a Transform
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), [(64, 64)]), r"transforms\[0\] must be a Transform, but got tuple"),
        # conf_threshold above 1
        (lambda: decode_yolov8(np.zeros((1, 6, 4)), T1, conf_threshold=1.5), r"conf_threshold must be in \[0, 1\]"),
        # conf_threshold negative, checked even for an empty batch
        (lambda: decode_yolov8(np.zeros((0, 6, 4)), [], conf_threshold=-0.1), r"conf_threshold must be in \[0, 1\]"),
        # iou_threshold not a number
        (lambda: decode_course(Z8, T1, ONE, iou_threshold="high"), r"iou_threshold must be a number in \[0, 1\]"),
        # max_det 0
        (lambda: decode_yolov5(np.zeros((1, 3, 7)), T1, max_det=0), r"max_det must be an int >= 1, but got 0"),
        # max_det not an int
        (lambda: decode("yolov5", np.zeros((1, 3, 7)), T1, max_det=2.5), r"max_det must be an int >= 1"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
