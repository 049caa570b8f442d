"""The trained small YOLO with NMS in the graph gives the Python postprocess's detections on the whole test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgepipe.export.data.detection import DatasetConfig, split_scenes
from edgepipe.export.onnx.nms_graph import course_postprocess_graph, with_nms
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course
from edgepipe.runtime import load, preprocess

YOLO = Path(__file__).resolve().parent / "assets" / "yolo-small.onnx"


def test_nms_in_graph_equals_python_postprocess_on_the_test_split():
    model = load(YOLO, providers="cpu")
    meta = model.meta
    images = [scene.image for scene in split_scenes(DatasetConfig(), "test")]  # the 300 test images, 160x160
    batch = preprocess(images, model.spec).batch
    raw = model.run(batch)[0]  # (300, A*(5+C), 10, 10)
    grid = raw.shape[2:]
    conf, iou, max_det = 0.001, 0.45, 300
    post = course_postprocess_graph(np.array(meta.anchors), len(meta.class_names), grid, meta.preprocess.input_size,
                                    conf, iou, max_det, 17)
    e2e = with_nms(onnx.load(str(YOLO)), post)
    got = ort.InferenceSession(e2e.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {model.inputs[0].name: batch})[0]  # (K, 7): image, x1, y1, x2, y2, score, class
    identity = [Transform.identity(meta.preprocess.input_size)] * len(images)
    expected = decode_course(raw, identity, meta.anchors, conf, iou, max_det, class_names=meta.class_names)
    assert sum(len(d) for d in expected) > 1000  # many candidates at conf 0.001: a real test of the NMS
    h, w = meta.preprocess.input_size
    for b, want in enumerate(expected):
        mine = got[got[:, 0] == b]
        mine = mine[np.lexsort((mine[:, 6], -mine[:, 5]))]
        order = np.lexsort((want.class_ids, -want.scores))
        np.testing.assert_allclose(np.clip(mine[:, 1:5], 0, [w, h, w, h]), want.xyxy[order], atol=1e-4)
        np.testing.assert_allclose(mine[:, 5], want.scores[order], atol=1e-5)
        np.testing.assert_array_equal(mine[:, 6].astype(np.int64), want.class_ids[order])
