"""Pose heads: the course's (2 outputs per landmark) decodes the targets training builds back to the landmarks, and
matches a loop; Ultralytics' YOLOv8 pose layout decodes known rows; the landmark loss against a loop; errors."""

import math

import numpy as np
import pytest
import torch

from edgepipe.export.train.losses import build_keypoint_targets, build_yolo_targets, keypoint_loss
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.pose import decode_course_pose, decode_yolov8_pose
from edgepipe.runtime.metadata import from_flat, from_metadata_props, to_metadata_props
from tests.decode_refs import GRID_ANCHORS, assert_matches, letterbox, ref_select, sigmoid, to_cells
from tests.test_decode_roundtrip import known_boxes

K = 4


def known_objects(rng, t, grid, n):
    """known_boxes with K landmarks each, inside their boxes: original and input-pixel keypoints (n, K, 3)."""
    originals, inputs, cells = known_boxes(rng, t, grid, n)
    u = rng.uniform(0, 1, (n, K, 2))
    points = originals[:, None, :2] + u * (originals[:, None, 2:] - originals[:, None, :2])  # (n, K, 2) original
    scale, pad = np.array([t.scale_x, t.scale_y]), np.array([t.pad_x, t.pad_y])
    as_input = np.concatenate([points * scale + pad, np.full((n, K, 1), 2.0)], axis=2)
    return originals, inputs, cells, points, as_input


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("layout", ["channels", "cells"])
def test_the_training_targets_decode_back_to_the_landmarks(seed, layout):
    rng = np.random.default_rng(seed)
    grid, size = ((10, 10), (160, 160)) if seed % 2 else ((8, 12), (256, 384))
    t = letterbox((int(rng.integers(200, 700)), int(rng.integers(200, 700))), size)
    n, c = 4, 3
    originals, inputs, _, points, as_input = known_objects(rng, t, grid, n)
    classes = rng.integers(0, c, n)
    anchors = np.array(GRID_ANCHORS)
    boxes_t = build_yolo_targets([inputs.astype(np.float32)], [classes], anchors, grid, size)
    points_t = build_keypoint_targets([inputs.astype(np.float32)], [as_input.astype(np.float32)], anchors, grid, size)
    # A perfect prediction of those targets: objectness logit +12 where responsible, -12 elsewhere.
    a = len(anchors)
    raw = np.zeros((1, a, 5 + c + 2 * K, *grid))
    obj = boxes_t.obj.numpy()[0]
    xy = np.clip(boxes_t.xy.numpy()[0].astype(np.float64), 1e-6, 1 - 1e-6)
    raw[0, :, 0:2] = np.log(xy / (1 - xy))  # sigmoid(tx) = the center's offset in its cell
    raw[0, :, 2:4] = boxes_t.wh.numpy()[0]
    raw[0, :, 4] = np.where(obj > 0, 12.0, -12.0)
    raw[0, :, 5:5 + c] = np.eye(c)[boxes_t.cls.numpy()[0]].transpose(0, 3, 1, 2) * 8.0
    raw[0, :, 5 + c:] = points_t.offsets.numpy()[0].reshape(a, 2 * K, *grid)
    raw = raw.reshape(1, -1, *grid).astype(np.float32)
    raw = to_cells(raw, a) if layout == "cells" else raw
    det = decode_course_pose(raw, [t], GRID_ANCHORS, 0.5, 1.0, layout=layout, kpt_shape=(K, 2))[0]
    order = np.argsort(-det.scores, kind="stable")
    matched = [int(np.argmin(np.abs(originals - box).sum(axis=1))) for box in det.xyxy[order]]
    assert sorted(matched) == list(range(n))
    np.testing.assert_allclose(det.xyxy[order], originals[matched], atol=1e-2)
    np.testing.assert_allclose(det.keypoints[order], points[matched], atol=1e-3)
    assert (det.keypoint_scores == 1).all()


def ref_course_pose(raw, anchors, t, counts) -> list:
    """decode_course_pose in float64 loops, one anchor and cell at a time: candidates (box, score, class, points,
    point scores). raw: (A, 5+C+2K, S_h, S_w)."""
    a, ch, s_h, s_w = raw.shape
    c = ch - 5 - 2 * K
    cell_h, cell_w = t.dst_size[0] / s_h, t.dst_size[1] / s_w
    cands = []
    for k in range(a):
        aw, ah = anchors[k][0] * cell_w, anchors[k][1] * cell_h
        for row in range(s_h):
            for col in range(s_w):
                v = [float(x) for x in raw[k, :, row, col]]
                e = [math.exp(x - max(v[5 : 5 + c])) for x in v[5 : 5 + c]]
                best = max(range(c), key=lambda j: e[j])
                cx, cy = (sigmoid(v[0]) + col) * cell_w, (sigmoid(v[1]) + row) * cell_h
                w, h = aw * math.exp(v[2]), ah * math.exp(v[3])
                pts = [(cx + v[5 + c + 2 * j] * w, cy + v[6 + c + 2 * j] * h) for j in range(K)]  # box-relative
                cands.append(([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], sigmoid(v[4]) * e[best] / sum(e), best,
                              pts, [1.0 if j < counts[best] else 0.0 for j in range(K)]))
    return cands


@pytest.mark.parametrize("seed", range(5))
def test_course_pose_matches_a_loop(seed):
    rng = np.random.default_rng(seed)
    raw = rng.normal(0, 2, (1, 3 * (5 + 3 + 2 * K), 5, 6)).astype(np.float32)
    t = letterbox((300, 420), (160, 192))
    counts = (4, 4, 3)  # the shapes' class_keypoints: the triangle has three
    det = decode("yolo-course-pose", raw, [t], 0.3, 0.5, anchors=GRID_ANCHORS, kpt_shape=(K, 2),
                 class_keypoints=counts)[0]
    cands = ref_course_pose(raw[0].reshape(3, 5 + 3 + 2 * K, 5, 6), GRID_ANCHORS, t, counts)
    expected = ref_select(cands, 0.3, 0.5)
    assert_matches(det, [(b, s, c) for b, s, c, _, _ in expected], t)
    scale, pad = np.array([t.scale_x, t.scale_y]), np.array([t.pad_x, t.pad_y])
    np.testing.assert_allclose(det.keypoints, [(np.array(p) - pad) / scale for *_, p, _ in expected], atol=1e-3,
                               rtol=1e-5)  # float32 against float64 on boxes exp(tw) made huge
    np.testing.assert_array_equal(det.keypoint_scores, [s for *_, s in expected])


def encode_v8_pose(rng, inputs, points, classes, scores, visible, n_rows, c):
    """An Ultralytics pose output (4+C+3K, N): the objects at random rows, cx, cy, w, h, class score, then per
    keypoint x, y, visibility; other rows background (class scores < 0.2)."""
    out = np.concatenate([rng.uniform(20, 300, (2, n_rows)), rng.uniform(5, 50, (2, n_rows)),
                          rng.uniform(0, 0.2, (c, n_rows)), rng.uniform(0, 320, (3 * K, n_rows))])
    rows = rng.choice(n_rows, len(inputs), replace=False)
    for r, (x1, y1, x2, y2), p, cls, s, v in zip(rows, inputs, points, classes, scores, visible, strict=True):
        out[:4, r] = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
        out[4 + cls, r] = s
        out[4 + c :, r] = np.concatenate([p[:, :2], v[:, None]], axis=1).reshape(-1)  # x, y, visibility per point
    return out.astype(np.float32)


@pytest.mark.parametrize("seed", range(6))
def test_yolov8_pose_decodes_known_rows(seed):
    rng = np.random.default_rng(seed)
    t = letterbox((int(rng.integers(200, 900)), int(rng.integers(200, 900))), (320, 320))
    originals, inputs, _, points, as_input = known_objects(rng, t, (8, 8), 3)
    classes, scores, visible = rng.integers(0, 2, 3), rng.uniform(0.6, 0.95, 3), rng.uniform(0, 1, (3, K))
    raw = encode_v8_pose(rng, inputs, as_input, classes, scores, visible, 150, 2)
    det = decode_yolov8_pose(raw[None], [t], 0.5, 1.0, kpt_shape=(K, 3))[0]
    order = np.argsort(-scores.astype(np.float32))
    np.testing.assert_allclose(det.xyxy, originals[order], atol=1e-3)
    np.testing.assert_allclose(det.keypoints, points[order], atol=1e-3)
    np.testing.assert_allclose(det.keypoint_scores, visible[order], atol=1e-6)
    two = decode_yolov8_pose(np.delete(raw, np.arange(6 + 2, 6 + 3 * K, 3), axis=0)[None], [t], 0.5, 1.0,
                             kpt_shape=(K, 2))[0]  # D = 2: no visibility rows, every point counts
    np.testing.assert_allclose(two.keypoints, det.keypoints, atol=1e-6)
    assert (two.keypoint_scores == 1).all()


def test_keypoint_loss_matches_a_loop():
    rng = np.random.default_rng(0)
    anchors, grid, size = np.array(GRID_ANCHORS), (5, 5), (160, 160)
    boxes = [np.array([[10, 20, 60, 90], [100, 40, 150, 70]], np.float32), np.zeros((0, 4), np.float32)]
    points = [np.concatenate([rng.uniform(0, 160, (2, K, 2)), [[[2], [2], [0], [1]], [[2], [0], [2], [2]]]], axis=2)
              .astype(np.float32), np.zeros((0, K, 3), np.float32)]
    targets = build_keypoint_targets(boxes, points, anchors, grid, size)
    pred = torch.from_numpy(rng.normal(0, 1, (2, 3 * (5 + 3 + 2 * K), *grid)).astype(np.float32))
    expected = 0.0
    for i, (bx, kp) in enumerate(zip(boxes, points, strict=True)):
        for box, pts in zip(bx, kp, strict=True):
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            col, row = int(cx // 32), int(cy // 32)
            w, h = (box[2] - box[0]) / 32, (box[3] - box[1]) / 32
            best = max(range(3), key=lambda a: min(w, anchors[a][0]) * min(h, anchors[a][1]) / (
                w * h + anchors[a][0] * anchors[a][1] - min(w, anchors[a][0]) * min(h, anchors[a][1])))
            for j, (x, y, v) in enumerate(pts):
                if v > 0:
                    base = best * (5 + 3 + 2 * K) + 5 + 3 + 2 * j
                    tx = (x - cx) / (box[2] - box[0])  # from the box's center, in its width and height
                    ty = (y - cy) / (box[3] - box[1])
                    px, py = pred[i, base, row, col].item(), pred[i, base + 1, row, col].item()
                    expected += (px - tx) ** 2 + (py - ty) ** 2
    assert keypoint_loss(pred, targets, 3).item() == pytest.approx(expected / 2, rel=1e-5)


T = letterbox((160, 160), (160, 160))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: decode_course_pose(np.zeros((1, 16, 5, 5), np.float32), [T], [(1, 1)]), r"kpt_shape must be \(K, D\)"),
        (lambda: decode_course_pose(np.zeros((1, 16, 5, 5), np.float32), [T], [(1, 1)], kpt_shape=(4, 3)),
         r"D in \(2,\)"),  # the course head has two numbers per landmark
        (lambda: decode_course_pose(np.zeros((1, 16, 5, 5), np.float32), [T], [(1, 1)], kpt_shape=(4, 2),
                                    class_names=("a", "b")), r"C = 3"),  # 16 - 5 - 8 = 3 classes, not 2
        (lambda: decode_course_pose(np.zeros((1, 16, 5, 5), np.float32), [T], [(1, 1)], kpt_shape=(4, 2),
                                    class_keypoints=(4, 4)), "class_keypoints must be one count in"),
        (lambda: decode_yolov8_pose(np.zeros((1, 20, 7), np.float32), [T], kpt_shape=(17, 3)), "C = -35"),
        (lambda: decode("yolov8-pose", np.zeros((1, 20, 7), np.float32), [T], kpt_shape=(4, 3), window=(2, 2)),
         r"head 'yolov8-pose' takes the options \('kpt_shape',\)"),
    ],
)
def test_pose_decoder_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


POSE = {"task": "detect", "imgsz": 160, "names": ["a", "b"], "head": "yolo-course-pose", "anchors": [[1, 1]],
        "kpt_shape": [4, 2], "class_keypoints": [4, 3]}


def test_pose_metadata_round_trip():
    meta = from_flat(POSE, "edgepipe")
    assert from_metadata_props(to_metadata_props(meta)) == meta
    assert meta.decode_options() == {"anchors": ((1.0, 1.0),), "anchor_units": "grid", "kpt_shape": (4, 2),
                                     "class_keypoints": (4, 3)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kpt_shape": []}, r"missing kpt_shape \(\[K >= 1, 2 or 3\]"),  # a pose head needs it
        ({"kpt_shape": [4, 5]}, "missing kpt_shape"),  # 5 numbers per landmark: neither x, y nor x, y, v
        ({"class_keypoints": [4]}, r"class_keypoints \(one count in \[0, K\] per class\)"),  # two classes
        ({"class_keypoints": [4, 5]}, "class_keypoints"),  # more than K
        ({"kpt_shape": "[17, x]"}, "metadata key 'kpt_shape' must be"),  # not a list of ints
    ],
)
def test_pose_metadata_errors(change, message):
    with pytest.raises(ValueError, match=message):
        from_flat({**POSE, **change}, "sidecar")
