"""Model metadata: round trip through a real ONNX file, Ultralytics keys, sidecars, overrides and every error."""

import json
import sys
from dataclasses import replace

import onnx
import pytest
from onnx import TensorProto, helper

from edgepipe.runtime.metadata import (
    SCHEMA,
    ModelMeta,
    from_flat,
    from_metadata_props,
    read_metadata,
    to_metadata_props,
)
from edgepipe.runtime.preprocessing import PreprocessSpec

DETECTOR = ModelMeta(
    task="detect",
    preprocess=PreprocessSpec((256, 320), pad_value=114, stride=32, auto_pad=True, dtype="float16"),
    class_names=("circle", "square", "triangle"),
    head="yolo-course",
    anchors=((1.0, 1.5), (3.0, 2.0)),
    anchor_units="grid",
    metrics={"map50": 0.93, "map": 0.61},
    model_name="yolo-small",
    version="0.1.0",
    exported_at="2026-11-27T00:00:00Z",
)
ENCODER = ModelMeta(
    task="verify",
    preprocess=PreprocessSpec((96, 96), resize="resize", channel_order="GRAY", mean=(0.5,), std=(0.25,)),
    embedding_size=128,
    distance="squared_l2",
    threshold=0.7,
)
CLASSIFIER = ModelMeta(
    task="classify",
    preprocess=PreprocessSpec((224, 224), resize="center_crop", channel_order="BGR",
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    class_names=tuple(f"class {i}" for i in range(10)),
)
ULTRALYTICS = {
    "description": "Ultralytics YOLOv8n model trained on coco.yaml",
    "author": "Ultralytics",
    "date": "2024-01-01T00:00:00",
    "version": "8.1.0",
    "license": "AGPL-3.0 License (https://ultralytics.com/license)",
    "docs": "https://docs.ultralytics.com",
    "stride": "32",
    "task": "detect",
    "batch": "1",
    "imgsz": "[640, 640]",
    "names": "{0: 'person', 1: 'bicycle', 2: 'car'}",
}


def save_onnx(path, props):
    """A one-node ONNX model (Relu) built with onnx.helper, with the given metadata_props, saved to path."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["images"], ["out"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, props)
    onnx.save(model, str(path))


def load_props(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


@pytest.mark.parametrize("meta", [DETECTOR, ENCODER, CLASSIFIER])
def test_round_trip_through_onnx_file(tmp_path, meta):
    props = to_metadata_props(meta)
    assert list(props) == ["edgepipe"] and json.loads(props["edgepipe"])["schema"] == SCHEMA == 2
    save_onnx(tmp_path / "m.onnx", props)
    loaded = load_props(tmp_path / "m.onnx")
    assert from_metadata_props(loaded) == meta
    assert read_metadata(loaded, tmp_path / "m.onnx") == meta  # no sidecar: the file's own metadata, as it is


def test_ultralytics_props_through_onnx_file(tmp_path):
    save_onnx(tmp_path / "yolov8n.onnx", ULTRALYTICS)
    meta = read_metadata(load_props(tmp_path / "yolov8n.onnx"), tmp_path / "yolov8n.onnx")
    assert (meta.task, meta.head, meta.source) == ("detect", "yolov8", "ultralytics")
    assert meta.class_names == ("person", "bicycle", "car")
    assert meta.model_name == ULTRALYTICS["description"]
    spec = meta.preprocess
    assert (spec.input_size, spec.resize, spec.pad_value, spec.stride) == ((640, 640), "letterbox", 114, 32)
    assert (spec.channel_order, spec.mean, spec.std, spec.dtype) == ("RGB", (0.0,) * 3, (1.0,) * 3, "float32")


@pytest.mark.parametrize(
    ("props", "names", "imgsz"),
    [
        ({"names": "{1: 'b', 0: 'a'}", "imgsz": "[320, 480]"}, ("a", "b"), (320, 480)),  # ids out of order
        ({"names": "['a', 'b']", "imgsz": "416", "author": "Ultralytics"}, ("a", "b"), (416, 416)),  # list, one size
        ({"author": "Ultralytics", "imgsz": "[640, 640]", "task": "detect"}, None, None),  # no names: need them
    ],
)
def test_ultralytics_variants(props, names, imgsz):
    if names is None:
        with pytest.raises(ValueError, match=r"missing names \(the class names\)"):
            read_metadata(props)
        return
    meta = read_metadata(props)
    assert meta.class_names == names and meta.preprocess.input_size == imgsz


def test_ultralytics_names_are_never_evaluated():
    # A names value that is code, not a literal, is refused rather than run.
    props = {**ULTRALYTICS, "names": "__import__('os').getcwd()"}
    with pytest.raises(ValueError, match=r"Ultralytics metadata key 'names' is malformed"):
        read_metadata(props)


def test_sidecar_describes_a_bare_model(tmp_path):
    (tmp_path / "face.json").write_text(json.dumps(
        {"task": "embed", "imgsz": 112, "embedding_size": 512, "distance": "cosine", "mean": [0.5], "std": 0.5}
    ))
    meta = read_metadata({}, tmp_path / "face.onnx")
    assert (meta.task, meta.embedding_size, meta.distance, meta.source) == ("embed", 512, "cosine", "sidecar")
    assert meta.preprocess.mean == (0.5,) * 3 and meta.preprocess.std == (0.5,) * 3
    assert meta.preprocess.input_size == (112, 112) and meta.preprocess.resize == "resize"


def test_precedence_overrides_sidecar_edgepipe_ultralytics(tmp_path):
    path = tmp_path / "det.onnx"
    # edgepipe metadata beats Ultralytics keys in the same file
    both = {**ULTRALYTICS, **to_metadata_props(DETECTOR)}
    assert read_metadata(both, path) == DETECTOR
    # a sidecar beats the file's own metadata; what it does not name is kept
    (tmp_path / "det.json").write_text(json.dumps({"names": ["a", "b", "c"], "imgsz": [128, 160]}))
    layered = read_metadata(both, path)
    assert layered.class_names == ("a", "b", "c") and layered.preprocess.input_size == (128, 160)
    assert layered.source == "sidecar"
    assert replace(layered, class_names=DETECTOR.class_names, source="edgepipe",
                   preprocess=DETECTOR.preprocess) == DETECTOR
    assert layered.preprocess == replace(DETECTOR.preprocess, input_size=(128, 160))
    # command-line options beat the sidecar; None means "not given"
    top = read_metadata(both, path, {"names": ["x", "y", "z"], "head": None})
    assert top.class_names == ("x", "y", "z") and top.preprocess.input_size == (128, 160)
    assert top.head == "yolo-course" and top.source == "options"
    # a sidecar also beats Ultralytics keys
    over_ultra = read_metadata(ULTRALYTICS, path)
    assert over_ultra.class_names == ("a", "b", "c") and over_ultra.head == "yolov8"
    assert over_ultra.source == "sidecar"


def test_options_alone_describe_a_model():
    meta = read_metadata({}, None, {"task": "classify", "imgsz": [28, 28], "names": {"0": "zero", "1": "one"},
                                     "channel_order": "GRAY"})
    assert meta.class_names == ("zero", "one") and meta.source == "options"
    assert meta.preprocess.input_size == (28, 28) and meta.preprocess.channels == 1


def test_yaml_sidecar(tmp_path, monkeypatch):
    (tmp_path / "m.yaml").write_text("task: classify\nimgsz: 32\nnames: [a, b]\n")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(ValueError, match=r"m.yaml needs PyYAML to read \(pip install pyyaml\), or use JSON"):
        read_metadata({}, tmp_path / "m.onnx")
    monkeypatch.undo()
    pytest.importorskip("yaml")
    assert read_metadata({}, tmp_path / "m.onnx").class_names == ("a", "b")


def test_json_sidecar_wins_over_yaml(tmp_path):
    # JSON is looked for first: a stray YAML next to it (unreadable without PyYAML) is never opened.
    (tmp_path / "m.json").write_text(json.dumps({"task": "classify", "imgsz": 32, "names": ["j"]}))
    (tmp_path / "m.yml").write_text("task: [unclosed\n")
    assert read_metadata({}, tmp_path / "m.onnx").class_names == ("j",)


BASE = {"task": "detect", "imgsz": 320, "head": "yolov8", "names": ["a"]}


@pytest.mark.parametrize(
    ("props", "overrides", "message"),
    [
        # nothing describes the model
        ({}, None, r"model cannot be described: missing \['task', 'imgsz'\]: add them at export, in a sidecar"),
        ({}, {"task": "classify", "names": ["a"]}, r"missing \['imgsz'\]"),  # no input size
        # a task without what it needs
        ({}, {"task": "detect", "imgsz": 320}, r"task 'detect' is missing head .*, names \(the class names\)"),
        ({}, {**BASE, "head": "yolo-course"}, r"missing anchors \(the yolo-course head needs them\)"),
        ({}, {"task": "embed", "imgsz": 96}, r"missing embedding_size \(> 0\), distance"),
        ({}, {"task": "classify", "imgsz": 32}, r"task 'classify' is missing names"),
        # values that are not what the key means
        ({}, {"colour": "red"}, r"unknown metadata overrides \['colour'\]"),
        ({}, {"task": "track", "imgsz": 64}, r"metadata key 'task' must be one of .* but got 'track'"),
        ({}, {**BASE, "head": "yolov9"}, r"metadata key 'head' must be one of .* but got 'yolov9'"),
        ({}, {**BASE, "anchor_units": "cm"}, r"metadata key 'anchor_units' must be one of .* but got 'cm'"),
        ({}, {**BASE, "imgsz": "640"}, r"metadata key 'imgsz' must be an int or \[height, width\] .* got '640'"),
        ({}, {**BASE, "imgsz": [640, 0]}, r"metadata key 'imgsz' must be .* but got \[640, 0\]"),
        ({}, {**BASE, "imgsz": [640, 480, 3]}, r"metadata key 'imgsz' must be .* but got \[640, 480, 3\]"),
        ({}, {**BASE, "imgsz": 320.5}, r"metadata key 'imgsz' must be .* but got 320.5"),
        ({}, {**BASE, "names": "a,b"}, r"metadata key 'names' must be a list of names.* but got 'a,b'"),
        ({}, {**BASE, "names": {"0": "a", "2": "c"}}, r"metadata key 'names' must be .* ids 0..N-1"),
        ({}, {**BASE, "head": "yolo-course", "anchors": [[1, 0]]}, r"metadata key 'anchors' must be .* > 0"),
        ({}, {**BASE, "anchors": [1, 2]}, r"metadata key 'anchors' must be a list of \[w, h\] pairs"),
        ({}, {**BASE, "mean": "0.5"}, r"metadata key 'mean' must be a number or a list of numbers, but got '0.5'"),
        ({}, {**BASE, "pad_value": "114"}, r"metadata key 'pad_value' must be an int .* but got '114'"),
        ({}, {**BASE, "auto_pad": "yes"}, r"metadata key 'auto_pad' must be true or false, but got 'yes'"),
        ({}, {**BASE, "threshold": "high"}, r"metadata key 'threshold' must be a number, but got 'high'"),
        ({}, {**BASE, "resize": "crop"}, r"resize must be one of"),
        ({}, {**BASE, "mean": [0.1, 0.2]}, r"mean and std must have 3 values for RGB"),
        # the edgepipe key
        ({"edgepipe": "{not json"}, None, r"metadata key 'edgepipe' is not valid JSON"),
        ({"edgepipe": "[1, 2]"}, None, r"metadata key 'edgepipe' must hold a JSON object, but got list"),
        ({"edgepipe": json.dumps({"task": "detect"})}, None, r"needs a schema >= 1, but got None"),
        ({"edgepipe": json.dumps({"schema": 99})}, None, r"schema 99, .* made by a newer edgepipe; upgrade edgepipe"),
        ({"edgepipe": json.dumps({"schema": 1, "task": "detect"})}, None, r"'edgepipe' is malformed"),
        ({"edgepipe": json.dumps({**json.loads(to_metadata_props(DETECTOR)["edgepipe"]), "colour": 1})}, None,
         r"'edgepipe' is malformed .*colour"),  # a key this schema does not have
        # Ultralytics keys
        ({"names": "{0: 'a'", "imgsz": "640"}, None, r"Ultralytics metadata key 'names' is malformed"),
        ({"author": "Ultralytics", "names": "{0: 'a'}", "imgsz": "[640"}, None, r"key 'imgsz' is malformed"),
        ({"task": "segment", "names": "{0: 'a'}", "imgsz": "640"}, None, r"task 'segment' is not supported"),
    ],
)
def test_errors_name_the_key(props, overrides, message):
    with pytest.raises(ValueError, match=message):
        read_metadata(props, None, overrides)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", r"m.json must hold a mapping of keys, but got list"),  # not a mapping
        ('{"task": "detect",', r"m.json is not valid JSON"),  # truncated
        (json.dumps({"task": "detect", "size": 3}), r"m.json has unknown keys \['size'\]"),  # a misspelled key
        (json.dumps({"task": "detect", "imgsz": "big"}), r"metadata key 'imgsz' must be .* but got 'big'"),
    ],
)
def test_bad_sidecar(tmp_path, text, message):
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ValueError, match=message):
        read_metadata({}, tmp_path / "m.onnx")


def test_from_flat_defaults_per_task():
    # Detectors default to a letterbox, other tasks to a plain resize; one mean/std value serves every channel.
    det = from_flat(BASE, "options")
    assert det.preprocess.resize == "letterbox" and det.preprocess.pad_value == 114
    cls = from_flat({"task": "classify", "imgsz": [32, 48], "names": ["a"]}, "options")
    assert cls.preprocess.resize == "resize" and cls.preprocess.input_size == (32, 48)
    assert cls.preprocess.mean == (0.0,) * 3 and cls.preprocess.std == (1.0,) * 3
