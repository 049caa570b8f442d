"""Model metadata: round trip through a real ONNX file, Ultralytics keys, sidecars, overrides and errors."""

import json

import onnx
import pytest

from runtime.metadata import ModelMeta, from_metadata_props, read_metadata, to_metadata_props
from runtime.preprocess import PreprocessSpec
from tests.onnx_graphs import conv_model

DETECTOR = ModelMeta(
    task="detect",
    preprocess=PreprocessSpec((256, 256), pad_value=114),
    class_names=("circle", "square", "triangle"),
    head="yolo-course",
    anchors=((1.0, 1.5), (3.0, 2.0)),
    metrics={"map50": 0.93},
    model_name="yolo-small",
    version="0.1.0",
    exported_at="2026-11-27T00:00:00Z",
)


def test_round_trip_through_onnx_file(tmp_path):
    model, _, _ = conv_model(props=to_metadata_props(DETECTOR))
    onnx.save(model, str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert from_metadata_props(props) == DETECTOR
    assert read_metadata(props) == DETECTOR
    assert json.loads(props["edgepipe"])["schema"] == 1


def test_ultralytics_props():
    props = {"task": "detect", "names": "{0: 'person', 1: 'bicycle', 2: 'car'}", "imgsz": "[640, 640]",
             "stride": "32", "author": "Ultralytics", "description": "Ultralytics YOLOv8n model"}
    meta = read_metadata(props)
    assert meta.head == "yolov8" and meta.source == "ultralytics"
    assert meta.class_names == ("person", "bicycle", "car")
    assert meta.preprocess.input_size == (640, 640) and meta.preprocess.pad_value == 114
    assert meta.preprocess.channel_order == "RGB" and meta.preprocess.resize == "letterbox"


def test_sidecar_and_overrides_precedence(tmp_path):
    path = tmp_path / "face.onnx"
    (tmp_path / "face.json").write_text(json.dumps(
        {"task": "embed", "imgsz": 112, "embedding_size": 512, "distance": "cosine", "mean": [0.5], "std": [0.5]}
    ))
    meta = read_metadata({}, path)
    assert (meta.task, meta.embedding_size, meta.source) == ("embed", 512, "sidecar")
    assert meta.preprocess.mean == (0.5, 0.5, 0.5) and meta.preprocess.input_size == (112, 112)
    # command-line options win over the sidecar
    assert read_metadata({}, path, {"embedding_size": 128, "imgsz": None}).embedding_size == 128
    # and a sidecar wins over the file's own metadata
    (tmp_path / "det.json").write_text(json.dumps({"names": ["a", "b", "c"]}))
    layered = read_metadata(to_metadata_props(DETECTOR), tmp_path / "det.onnx")
    assert layered.class_names == ("a", "b", "c") and layered.anchors == DETECTOR.anchors
    assert layered.metrics == DETECTOR.metrics


@pytest.mark.parametrize(
    ("props", "overrides", "message"),
    [
        ({}, None, r"model cannot be described: missing \['task', 'imgsz'\]"),  # nothing at all
        ({}, {"task": "detect", "imgsz": 320}, r"missing head .* names"),  # detector without head and names
        ({}, {"task": "detect", "imgsz": 320, "head": "yolo-course", "names": ["a"]}, r"missing anchors"),
        ({}, {"task": "embed", "imgsz": 96}, r"missing embedding_size \(> 0\), distance"),
        ({}, {"colour": "red"}, r"unknown metadata overrides \['colour'\]"),
        ({"edgepipe": "{not json"}, None, r"is not valid JSON"),
        ({"edgepipe": json.dumps({"schema": 99})}, None, r"made by a newer edgepipe; upgrade edgepipe"),
        ({"edgepipe": json.dumps({"schema": 1, "task": "detect"})}, None, r"is malformed"),
        ({"names": "{0: 'a'", "imgsz": "640"}, None, r"Ultralytics metadata key 'names' is malformed"),
        ({"task": "segment", "names": "{0: 'a'}", "imgsz": "640"}, None, r"only 'detect' models run here"),
        ({}, {"task": "track", "imgsz": 64}, r"metadata key 'task' must be one of"),
    ],
)
def test_errors_name_what_is_missing(props, overrides, message):
    with pytest.raises(ValueError, match=message):
        read_metadata(props, None, overrides)


def test_bad_sidecar(tmp_path):
    (tmp_path / "m.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"must hold a mapping of keys, but got list"):
        read_metadata({}, tmp_path / "m.onnx")
    (tmp_path / "m.json").write_text(json.dumps({"task": "detect", "size": 3}))
    with pytest.raises(ValueError, match=r"unknown keys \['size'\]"):
        read_metadata({}, tmp_path / "m.onnx")
