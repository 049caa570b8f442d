"""uint8 frame input: the runtime only resizes and pads, the graph normalizes (outputs equal the float model's), the
detector on such a file, `bench` beside the float file; the metadata that says so; files written 0644."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.export.data.detection import DatasetConfig, split_scenes
from edgepipe.runtime import files, load, preprocess
from edgepipe.runtime.metadata import from_metadata_props, read_metadata, to_metadata_props
from edgepipe.runtime.preprocessing import PreprocessSpec
from edgepipe.runtime.variants import save_model, uint8_input_model
from tests.detect_runs import YOLO
from tests.onnx_graphs import conv_model, save
from tests.runtime_models import META

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def frames(seed: int = 0) -> list[np.ndarray]:
    """Frames of other sizes and kinds than the model's input: BGR, gray (H, W), BGRA."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40, 52, 3), dtype=np.uint8), rng.integers(0, 256, (30, 30), dtype=np.uint8),
            rng.integers(0, 256, (64, 48, 4), dtype=np.uint8)]


@pytest.mark.parametrize("order", ["RGB", "BGR", "GRAY"])
def test_uint8_preprocessing_only_resizes_and_pads(order):
    spec = PreprocessSpec((32, 32), channel_order=order)  # letterbox, pad 114, mean 0, std 1: x = pixel / 255
    floats = preprocess(frames(), spec)
    raw = preprocess(frames(), replace(spec, dtype="uint8"))
    assert raw.batch.dtype == np.uint8 and raw.batch.shape == (3, 32, 32, spec.channels)
    assert raw.transforms == floats.transforms
    bgr_to_model = {"RGB": [2, 1, 0], "BGR": [0, 1, 2], "GRAY": [0]}[order]
    as_model = raw.batch.transpose(0, 3, 1, 2)[:, bgr_to_model]  # (B, C, H, W) in the model's order
    np.testing.assert_array_equal(np.rint(floats.batch * 255), as_model)


@pytest.mark.parametrize("order", ["RGB", "GRAY"])
@pytest.mark.parametrize("resize", ["letterbox", "resize", "center_crop"])
def test_one_uint8_frame_matches_the_float_path_and_never_the_callers_memory(order, resize):
    spec = PreprocessSpec((40, 52), resize=resize, channel_order=order)  # the first frame's own size: no resize
    bgr_to_model = {"RGB": [2, 1, 0], "GRAY": [0]}[order]
    for frame in frames():
        one = preprocess(frame, replace(spec, dtype="uint8")).batch
        assert one.shape == (1, 40, 52, spec.channels) and one.flags.c_contiguous
        floats = preprocess(frame, spec).batch  # the float path writes x / 255 plane by plane (cv2.addWeighted)
        np.testing.assert_array_equal(one.transpose(0, 3, 1, 2)[:, bgr_to_model], np.rint(floats * 255))
        assert not np.shares_memory(one, frame)


GRAY = {"mean": (0.5,), "std": (0.25,)}


@pytest.mark.parametrize(("order", "norm"), [("RGB", IMAGENET), ("BGR", {}), ("GRAY", GRAY)])
def test_the_graph_normalizes_as_the_float_preprocessing_does(tmp_path, order, norm):
    spec = PreprocessSpec((32, 32), resize="letterbox", channel_order=order, **norm)
    meta = replace(META, preprocess=spec)
    model, _, _ = conv_model(channels=spec.channels, props=to_metadata_props(meta))
    float_path = save(model, tmp_path / "f.onnx")
    frames_path = save_model(uint8_input_model(model, meta), tmp_path / "u.onnx")
    float_model, frames_model = load(float_path, providers="cpu"), load(frames_path, providers="cpu")
    assert frames_model.meta.preprocess == replace(spec, dtype="uint8")
    assert frames_model.inputs[0].describe() == f"x: uint8 (N, 32, 32, {spec.channels})"
    np.testing.assert_allclose(frames_model(frames())[0][0], float_model(frames())[0][0], atol=1e-5)


def test_uint8_input_refuses_what_it_cannot_prefix():
    meta = replace(META, preprocess=PreprocessSpec((32, 32), dtype="float16"))
    with pytest.raises(ValueError, match="--uint8-input needs a float32 model, but this one takes float16"):
        uint8_input_model(conv_model()[0], meta)
    half, _, _ = conv_model(dtype=TensorProto.FLOAT16)
    with pytest.raises(ValueError, match=r"needs one float \(B, C, H, W\) image input"):
        uint8_input_model(half, META)


def test_the_detector_on_a_uint8_file_finds_what_the_float_file_finds(tmp_path, capsys):
    model = onnx.load(str(YOLO))
    meta = from_metadata_props({p.key: p.value for p in model.metadata_props})
    path = save_model(uint8_input_model(model, meta), tmp_path / "yolo.uint8.onnx")
    images = [s.image for _, s in zip(range(20), split_scenes(DatasetConfig(), "test"), strict=False)]
    want = Detector(load(YOLO, providers="cpu"), conf=0.1)(images)
    got = Detector(load(path, providers="cpu"), conf=0.1)(images)
    assert sum(map(len, want)) > 20
    for w, g in zip(want, got, strict=True):
        np.testing.assert_allclose(g.xyxy, w.xyxy, atol=1e-4)
        np.testing.assert_array_equal(g.class_ids, w.class_ids)
    assert main(["bench", str(YOLO), "--compare", str(path), "--runs", "3", "--provider", "cpu", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["name"] for r in rows] == ["yolo-small.onnx", "compare:yolo.uint8.onnx"]


def test_metadata_keeps_the_nms_thresholds_and_the_evaluation(tmp_path):
    meta = replace(META, task="detect", head="yolo-nms", nms={"conf": 0.25, "iou": 0.45, "max_det": 100.0},
                   evaluation={"metric": "map50", "map50": 0.92, "data": "shapes test split", "within_budget": True})
    assert from_metadata_props(to_metadata_props(meta)) == meta
    with pytest.raises(ValueError, match=r"missing nms \('conf', 'iou', 'max_det'\)"):
        replace(meta, nms={})
    (tmp_path / "m.json").write_text(json.dumps({"task": "detect", "imgsz": 64, "names": ["a"], "head": "yolo-nms",
                                                 "nms": {"conf": 0.3, "iou": 0.5, "max_det": 50}}))
    assert read_metadata({}, tmp_path / "m.onnx").nms == {"conf": 0.3, "iou": 0.5, "max_det": 50.0}
    with pytest.raises(ValueError, match="metadata key 'nms' must be a mapping"):
        read_metadata({}, overrides={"task": "detect", "imgsz": 64, "names": ["a"], "nms": {"score": 1}})


def test_files_are_written_with_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = files.write_atomic(tmp_path / "model.onnx", b"bytes")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == b"bytes"
        os.umask(0o077)
        assert stat.S_IMODE(files.write_atomic(tmp_path / "private.onnx", b"x").stat().st_mode) == 0o600
    finally:
        os.umask(mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "private.onnx"]  # no temporary file left
