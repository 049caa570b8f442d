"""The yolo-nms head: rows of an end-to-end graph to Detections (against a per-image loop), the thresholds it can
give, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform, boxes_to_original
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.nms_output import NMS_HEAD, check_nms_settings, decode_nms

SIZE = (160, 160)


def rows(rng: np.random.Generator, k: int, batch: int) -> np.ndarray:
    """(K, 7) rows: image, x1, y1, x2, y2 (input pixels, some past the edge), score, class."""
    xy = rng.uniform(-10, 150, (k, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(2, 40, (k, 2))], axis=1)
    return np.column_stack([rng.integers(0, batch, k), boxes, rng.uniform(0, 1, k), rng.integers(0, 3, k)]
                           ).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_rows_become_each_images_detections(seed):
    rng = np.random.default_rng(seed)
    out = rows(rng, 60, 3)
    transforms = [Transform(0.5, 0.5, 0.0, 20.0, (280, 320), SIZE), Transform.identity(SIZE),
                  Transform(2.0, 2.0, 5.0, 5.0, (75, 75), SIZE)]
    got = decode(NMS_HEAD, out, transforms, conf_threshold=0.3, max_det=7, class_names=("a", "b", "c"))
    for b, (det, t) in enumerate(zip(got, transforms, strict=True)):
        mine = [r for r in out.tolist() if r[0] == b and r[5] >= np.float32(0.3)]
        mine = sorted(mine, key=lambda r: -r[5])[:7]  # by score, the 7 best
        want = boxes_to_original(np.array([r[1:5] for r in mine], np.float32).reshape(-1, 4), t)
        np.testing.assert_allclose(det.xyxy, want, atol=1e-4)
        np.testing.assert_allclose(det.scores, [r[5] for r in mine], atol=1e-7)
        np.testing.assert_array_equal(det.class_ids, [int(r[6]) for r in mine])
        assert det.class_names == ("a", "b", "c")


def test_no_rows_give_empty_detections():
    got = decode_nms(np.zeros((0, 7), np.float32), [Transform.identity(SIZE)] * 2)
    assert [len(d) for d in got] == [0, 0]


@pytest.mark.parametrize(
    ("outputs", "transforms", "kwargs", "message"),
    [
        (np.zeros((2, 6), np.float32), 1, {}, r"outputs must be a float array \(K, 7\)"),  # a raw head's output
        (np.zeros((1, 2, 7), np.float32), 1, {}, r"\(K, 7\)"),  # batched rows are not this layout
        (np.zeros((2, 7), np.int32), 1, {}, "but got int32"),  # not float
        (np.full((1, 7), np.nan, np.float32), 1, {}, "must be finite"),
        (np.array([[3, 0, 0, 1, 1, 0.9, 0]], np.float32), 2, {}, "name image 3, but got 2 transforms"),
        (np.zeros((1, 7), np.float32), 1, {"anchors": [[1.0, 1.0]]}, "anchors belong to the yolo-course head"),
        (np.zeros((1, 7), np.float32), 1, {"max_det": 0}, "max_det must be an int >= 1"),
        (np.zeros((1, 7), np.float32), 1, {"conf_threshold": 2.0}, r"conf_threshold must be in \[0, 1\]"),
    ],
)
def test_bad_outputs_are_refused(outputs, transforms, kwargs, message):
    with pytest.raises(ValueError, match=message):
        decode_nms(outputs, [Transform.identity(SIZE)] * transforms, **kwargs)


NMS = {"conf": 0.25, "iou": 0.45, "max_det": 100}


@pytest.mark.parametrize(
    ("conf", "iou", "agnostic", "message"),
    [
        (0.25, 0.45, False, None),  # the graph's own thresholds
        (0.5, 0.45, False, None),  # a higher score threshold: boxes under it never suppressed one above it
        (0.1, 0.45, False, "cannot give conf 0.1, iou 0.45"),  # lower: the graph dropped those boxes
        (0.25, 0.5, False, "cannot give conf 0.25, iou 0.5"),  # another IoU: not what the graph did
        (0.25, 0.45, True, "agnostic NMS"),  # the graph's NMS is per class
    ],
)
def test_the_thresholds_the_graph_can_give(conf, iou, agnostic, message):
    if message is None:
        check_nms_settings(NMS, conf, iou, agnostic)
    else:
        with pytest.raises(ValueError, match=message):
            check_nms_settings(NMS, conf, iou, agnostic)
    with pytest.raises(ValueError, match="must give nms"):
        check_nms_settings({"conf": 0.25}, 0.25, 0.45)
