"""Loop references for the YOLO decoders (float64, one anchor, cell or row at a time) and what their tests share."""

import math

import numpy as np

from edgepipe.postprocess.boxes import Transform

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
    """cands: [(box xyxy, score, class, ...)] in candidate order. Score filter, greedy NMS per class, cap; loops."""
    order = sorted((i for i, c in enumerate(cands) if c[1] >= conf), key=lambda i: (-cands[i][1], i))
    kept = []
    for i in order:
        box, _, cls = cands[i][:3]
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



def random_v5(rng, k, c):
    """(K, 5+C) float32: boxes anywhere in 320 px, objectness and class scores mostly low (uniform cubed)."""
    return np.concatenate(
        [rng.uniform(0, 320, (k, 2)), rng.uniform(1, 80, (k, 2)), rng.uniform(0, 1, (k, 1 + c)) ** 3], axis=1
    ).astype(np.float32)
