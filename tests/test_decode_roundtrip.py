"""YOLO decoders: known boxes encoded into raw tensors (the heads' inverses) and decoded back."""

import math

import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course, decode_yolov5, decode_yolov8
from tests.decode_refs import GRID_ANCHORS, PIXEL_ANCHORS, letterbox, logit, to_cells


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

