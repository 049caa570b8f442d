"""YOLO decoders against the Python-loop references of tests/decode_refs.py on random outputs."""

import numpy as np
import pytest

from edgepipe.postprocess.decoders import decode_course, decode_yolov5, decode_yolov8
from tests.decode_refs import (
    assert_matches,
    letterbox,
    random_v5,
    ref_course,
    ref_select,
    ref_yolov5,
    ref_yolov8,
    to_cells,
)


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



@pytest.mark.parametrize("seed", range(15))
def test_yolov5_matches_loop_reference(seed):
    rng = np.random.default_rng(seed)
    c, conf, iou = int(rng.integers(1, 6)), float(rng.choice([0.01, 0.1, 0.3])), float(rng.choice([0.3, 0.6]))
    out = np.stack([random_v5(rng, 150, c) for _ in range(2)])
    ts = [letterbox((int(rng.integers(100, 700)), int(rng.integers(100, 700))), (320, 320)) for _ in "ab"]
    got = decode_yolov5(out, ts, conf, iou, class_agnostic=bool(seed % 2))
    for image, t, det in zip(out, ts, got, strict=True):
        assert_matches(det, ref_select(ref_yolov5(image), conf, iou, agnostic=bool(seed % 2)), t)


@pytest.mark.parametrize("conf", [0.001, 0.5])
def test_yolov8_tied_class_scores_take_the_first_class(conf):
    """Class scores on a coarse grid tie often: the class is the first best one, as the loop reference picks it,
    both when most columns pass (ids found over all of them) and when few do (ids of the passing ones only)."""
    rng = np.random.default_rng(3)
    out = random_v5(rng, 400, 6)[:, [0, 1, 2, 3, *range(5, 11)]].T.copy()  # (4+C, K)
    out[4:] = np.round(out[4:] * 3) / 3  # scores 0, 1/3, 2/3 or 1: many ties
    t = letterbox((480, 640), (320, 320))
    got = decode_yolov8(out[None], [t], conf, 0.5, max_det=1000)[0]
    assert_matches(got, ref_select(ref_yolov8(out), conf, 0.5, 1000), t)


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

