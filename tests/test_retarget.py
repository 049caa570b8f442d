"""Fixed-size YOLOv8 exports re-targeted to the frames' aspect, against what Ultralytics itself exports at that size
(tests/assets/ultralytics, written by its make.py)."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.export.data.detection import make_video
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime import load
from edgepipe.runtime.retarget import NotRetargetable, anchor_grid, retarget
from tests.detect_runs import YOLO
from tests.runtime_models import NO_GPU

ASSETS = Path(__file__).parent / "assets" / "ultralytics"
SQUARE = ASSETS / "yolov8t-96x96.onnx"  # Ultralytics' default export (simplified)
PLAIN = ASSETS / "yolov8t-96x96-plain.onnx"  # simplify=False: Constant nodes instead of initializers
WIDE = ASSETS / "yolov8t-64x96.onnx"  # the same weights exported by Ultralytics at 64x96: the reference


def run(data: bytes | str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("path", [SQUARE, PLAIN], ids=["simplified", "plain"])
def test_retarget_matches_ultralytics_export_at_that_size(path):
    x = np.random.default_rng(0).random((1, 3, 64, 96), dtype=np.float32)
    want = run(str(WIDE), x)
    got = run(retarget(path.read_bytes(), (64, 96)), x)
    assert got.shape == want.shape == (1, 7, 12 * 8 + 6 * 4 + 3 * 2)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
    assert want[0, 4:].max(0).std() > 0.05  # the scores spread: the check compares detections, not constants


def test_anchor_grid_brute_force():
    points, steps = anchor_grid((64, 96), (8, 16, 32))
    want = [(x + 0.5, y + 0.5, s) for s in (8, 16, 32) for y in range(64 // s) for x in range(96 // s)]
    np.testing.assert_array_equal(np.column_stack([points.T, steps]), np.array(want, np.float32))


def test_retarget_refuses_sizes_off_the_stride_and_foreign_graphs():
    with pytest.raises(NotRetargetable, match="multiples of its largest stride 32"):
        retarget(SQUARE.read_bytes(), (80, 96))
    with pytest.raises(NotRetargetable, match="not a fixed"):
        retarget(YOLO.read_bytes(), (128, 160))  # the course YOLO: a dynamic input


def test_retarget_refuses_a_constant_it_does_not_understand():
    model = onnx.load(str(PLAIN))
    for node in model.graph.node:  # the strides constant, made unlike a stride grid
        value = numpy_helper.to_array(node.attribute[0].t) if node.op_type == "Constant" else None
        if value is not None and value.shape == (1, 189):
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(value * 1.5))
    with pytest.raises(NotRetargetable, match="depends on the 189 anchors but is not their grid"):
        retarget(model.SerializeToString(), (64, 96))


def test_model_at_size():
    model = load(SQUARE, providers="cpu")
    assert model.at_size((96, 96)) is model and model.anchor_stride() == (32, "")
    wide = model.at_size((64, 96))
    assert wide is model.at_size((64, 96)) and wide.fixed_size == (64, 96) and wide.meta is model.meta
    with pytest.raises(UserError, match=r"yolo-small.onnx cannot run at 64x96: only a YOLOv8 detector.s anchor grid"):
        load(YOLO, providers="cpu").at_size((64, 96))


@NO_GPU
def test_a_retargeted_session_is_checked_like_the_first(caplog):
    """Each size's session goes through load's provider check: CUDA asked for and not running is said again (a
    warning with the fallback allowed), never a silent CPU run."""
    with caplog.at_level(logging.WARNING, logger="edgepipe.runtime"):
        model = load(SQUARE, providers="cuda", allow_fallback=True)
        wide = model.at_size((64, 96))
    assert wide.providers[0] == "CPUExecutionProvider"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["yolov8t-96x96.onnx: CUDAExecutionProvider was requested but could not run here; "
                        "CPUExecutionProvider runs the model"] * 2


def frame(height: int, width: int) -> np.ndarray:
    return cv2.resize(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8), (width, height))


def test_detector_runs_the_frames_aspect_as_ultralytics_export_would(caplog):
    image = frame(400, 600)  # 2:3, letterboxed into 64x96 exactly
    with caplog.at_level(logging.INFO, logger="edgepipe"):
        rect = Detector(load(SQUARE, providers="cpu"), conf=0.3)
        prepared = rect.prepare(image)
        (got,) = rect.infer(prepared)
    assert prepared.batch.shape == (1, 3, 64, 96)
    assert "yolov8t-96x96.onnx runs at 64x96, re-targeted from its fixed 96x96" in caplog.text
    (want,) = Detector(load(WIDE, providers="cpu"), conf=0.3).infer(rect.prepare(image))
    assert len(want.detections) > 0
    np.testing.assert_allclose(got.detections.xyxy, want.detections.xyxy, atol=1e-3)
    np.testing.assert_array_equal(got.detections.class_ids, want.detections.class_ids)
    square = Detector(load(SQUARE, providers="cpu"), conf=0.3, rect=False)
    assert square.prepare(image).batch.shape == (1, 3, 96, 96) and not square.rect
    assert rect.forward(prepared.batch).shape == (1, 7, 126)


def test_detector_keeps_the_square_for_a_model_it_cannot_retarget(tmp_path, caplog):
    model = onnx.load(str(PLAIN))
    for node in model.graph.node:
        if node.op_type == "Constant" and numpy_helper.to_array(node.attribute[0].t).shape == (1, 189):
            node.attribute[0].t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(node.attribute[0].t) + 1))
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    with caplog.at_level(logging.INFO, logger="edgepipe"):
        detector = Detector(load(path, providers="cpu"))
    assert not detector.rect and detector.prepare(frame(400, 600)).batch.shape == (1, 3, 96, 96)
    assert "odd.onnx runs at its fixed 96x96 whatever the frame size: it cannot be re-targeted" in caplog.text


@pytest.fixture(scope="module")
def wide_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("wide") / "wide.mp4"
    make_video(path, n_frames=12, size=(240, 480), seed=4)
    return path


def test_detect_and_bench_pipeline_run_retargeted(wide_video, tmp_path, capsys):
    rows = {}
    for flag in ([], ["--no-rect"]):
        out = tmp_path / f"d{len(flag)}.jsonl"
        assert main(["detect", "--model", str(SQUARE), "--source", str(wide_video), "--provider", "cpu", "--jsonl",
                     str(out), "--conf", "0.3", *flag]) == 0
        rows[bool(flag)] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows[False]) == len(rows[True]) == 12
    assert sum(len(r["detections"]) for r in rows[False]) > 0
    capsys.readouterr()
    assert main(["bench", str(SQUARE), "--provider", "cpu", "--pipeline", str(wide_video), "--rounds", "1",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_size"] == [64, 96] and report["exported_size"] == [96, 96]
    assert report["exported_fps"] > 0 and report["bare_fps"] > 0
    assert main(["bench", str(SQUARE), "--provider", "cpu", "--pipeline", str(wide_video), "--rounds", "1",
                 "--json", "--no-rect"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["input_size"] == report["exported_size"] == [96, 96]


def test_eval_feeds_a_batch_one_export_one_frame_at_a_time():
    from edgepipe.export.options import EVAL_CONF, EVAL_IOU, EVAL_MAX_DET
    from edgepipe.export.predict import OnnxPredictor, detect

    frames = [frame(400, 600), frame(300, 300), cv2.flip(frame(400, 600), 1)]
    got = detect(OnnxPredictor(str(SQUARE)), frames)
    reference = Detector(load(SQUARE, providers="cpu"), EVAL_CONF, EVAL_IOU, max_det=EVAL_MAX_DET, rect=False)
    for g, image in zip(got, frames, strict=True):
        (want,) = reference([image])
        assert len(g) == len(want) > 0
        np.testing.assert_allclose(g.xyxy, want.xyxy, atol=1e-4)
