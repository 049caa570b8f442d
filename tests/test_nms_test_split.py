"""The trained small YOLO with NMS in the graph gives the Python postprocess's detections on the whole test split,
through the decoder alone and through `edgepipe detect`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.export.data.detection import DatasetConfig, split_scenes
from edgepipe.export.onnx.nms_graph import course_postprocess_graph, with_nms
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course
from edgepipe.postprocess.nms_output import NMS_HEAD
from edgepipe.runtime import load, preprocess
from edgepipe.runtime.variants import save_model, with_meta

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


def nms_file(tmp_path: Path, conf: float, iou: float, max_det: int) -> Path:
    """The asset with its decode + NMS inside the graph, described as export --nms describes it."""
    model = load(YOLO, providers="cpu")
    meta = model.meta
    post = course_postprocess_graph(np.array(meta.anchors), len(meta.class_names), (10, 10),
                                    meta.preprocess.input_size, conf, iou, max_det, 17)
    described = replace(meta, head=NMS_HEAD, anchors=(), nms={"conf": conf, "iou": iou, "max_det": max_det})
    return save_model(with_meta(with_nms(onnx.load(str(YOLO)), post), described), tmp_path / "yolo.nms.onnx")


def test_detect_gives_the_same_detections_on_the_nms_file_as_on_the_model(tmp_path, capsys):
    """The detect command's pipeline (Detector) on the whole test split, then the command itself on a few images."""
    conf, iou = 0.001, 0.45
    e2e = nms_file(tmp_path, conf, iou, 300)
    images = [scene.image for scene in split_scenes(DatasetConfig(), "test")]
    plain = Detector(load(YOLO, providers="cpu"), conf, iou, max_det=300)
    in_graph = Detector(load(e2e, providers="cpu"), conf, iou, max_det=300)
    total = 0
    for i in range(0, len(images), 50):
        for want, got in zip(plain(images[i : i + 50]), in_graph(images[i : i + 50]), strict=True):
            order = np.lexsort((want.class_ids, -want.scores))
            mine = np.lexsort((got.class_ids, -got.scores))
            np.testing.assert_allclose(got.xyxy[mine], want.xyxy[order], atol=1e-4)
            np.testing.assert_allclose(got.scores[mine], want.scores[order], atol=1e-5)
            np.testing.assert_array_equal(got.class_ids[mine], want.class_ids[order])
            total += len(want)
    assert total > 1000
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(images[:5]):
        cv2.imwrite(str(folder / f"{i}.png"), image)
    records = {}
    for name, model in (("plain", YOLO), ("nms", e2e)):  # the command, at its default thresholds (the graph's iou)
        out = tmp_path / f"{name}.jsonl"
        assert main(["detect", "--model", str(model), "--source", str(folder), "--provider", "cpu", "--no-show",
                     "--jsonl", str(out)]) == 0
        records[name] = [json.loads(line)["detections"] for line in out.read_text().splitlines()]
    assert sum(map(len, records["plain"])) >= 5
    for want, got in zip(records["plain"], records["nms"], strict=True):
        assert [(d["class_id"], d["score"]) for d in got] == [(d["class_id"], d["score"]) for d in want]
        np.testing.assert_allclose([d["xyxy"] for d in got], [d["xyxy"] for d in want], atol=0.01 + 1e-4)
    capsys.readouterr()
    assert main(["detect", "--model", str(e2e), "--source", str(folder), "--conf", "0.0005", "--no-show"]) == 2
    assert "this model runs class-aware NMS inside its graph at conf 0.001, iou 0.45" in capsys.readouterr().err
