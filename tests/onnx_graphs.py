"""Tiny ONNX graphs built with onnx.helper for runtime tests and benchmarks: no weights, no downloads, CPU provider."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 9  # onnxruntime 1.31 reads IR <= 13; onnx 1.23 writes 14 by default
OPSET = 17

Dim = int | str


def _model(graph: onnx.GraphProto, props: dict[str, str] | None) -> onnx.ModelProto:
    """A model at OPSET / IR_VERSION with the given metadata_props."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model


def conv_model(
    channels: int = 3,
    size: tuple[Dim, Dim] = (32, 32),
    batch: Dim = "N",
    dtype: int = TensorProto.FLOAT,
    props: dict[str, str] | None = None,
    seed: int = 0,
) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """A 3x3 SAME conv with 4 filters then ReLU: x (batch, channels, H, W) -> y (batch, 4, H, W).

    Returns the model, its weight (4, channels, 3, 3) float32 and bias (4,) for a numpy reference.
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.5, (4, channels, 3, 3)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    np_dtype = np.float16 if dtype == TensorProto.FLOAT16 else np.float32
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["z"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["z"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", dtype, [batch, channels, *size])],
        [helper.make_tensor_value_info("y", dtype, [batch, 4, *size])],
        [numpy_helper.from_array(w.astype(np_dtype), "w"), numpy_helper.from_array(b.astype(np_dtype), "b")],
    )
    return _model(graph, props), w, b


def conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """What conv_model computes, in float64 numpy: x (B, C, H, W) -> (B, 4, H, W)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    _, _, h, wd = x.shape
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("bchw,oc->bohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return np.maximum(out + b[None, :, None, None], 0)


def matmul_model(k: int = 8, batch: Dim = "N", props: dict[str, str] | None = None) -> onnx.ModelProto:
    """Two inputs, a batched matrix product: a (batch, 4, k) @ b (batch, k, 5) -> y (batch, 4, 5)."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        "matmul",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [batch, 4, k]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [batch, k, 5]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 5])],
    )
    return _model(graph, props)


def identity_model(
    shape: tuple[Dim, ...] = ("N", 3, "H", "W"), dtype: int = TensorProto.FLOAT, props: dict[str, str] | None = None
) -> onnx.ModelProto:
    """x -> y unchanged, any shape and element type: the model that shows what preprocessing produced."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", dtype, list(shape))],
        [helper.make_tensor_value_info("y", dtype, list(shape))],
    )
    return _model(graph, props)


def nonzero_model(shape: tuple[Dim, ...] = (1, 3, 8, 8)) -> onnx.ModelProto:
    """x -> the indices of its positive entries, (4, K) int64: an output whose size depends on the data."""
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    graph = helper.make_graph(
        [helper.make_node("Greater", ["x", "zero"], ["positive"]), helper.make_node("NonZero", ["positive"], ["y"])],
        "nonzero",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [len(shape), "K"])],
        initializer=[zero],
    )
    return _model(graph, None)


def conv_net_model(
    size: tuple[int, int] = (320, 320), widths: tuple[int, ...] = (16, 32, 64, 128), seed: int = 0,
    props: dict[str, str] | None = None,
) -> onnx.ModelProto:
    """A small detector-like backbone: per width a 3x3 stride-2 conv + ReLU, then a 1x1 conv to 8 channels.

    x (N, 3, H, W) float32 -> y (N, 8, H / 2^L, W / 2^L) with L = len(widths). For benchmarks.
    """
    rng = np.random.default_rng(seed)
    nodes, weights, c_in, name = [], [], 3, "x"
    for i, c_out in enumerate(widths):
        w = rng.normal(0, (2 / (9 * c_in)) ** 0.5, (c_out, c_in, 3, 3)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(c_out, np.float32), f"b{i}")]
        nodes += [
            helper.make_node("Conv", [name, f"w{i}", f"b{i}"], [f"z{i}"], pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", [f"z{i}"], [f"a{i}"]),
        ]
        c_in, name = c_out, f"a{i}"
    head = rng.normal(0, (1 / c_in) ** 0.5, (8, c_in, 1, 1)).astype(np.float32)
    weights.append(numpy_helper.from_array(head, "head"))
    nodes.append(helper.make_node("Conv", [name, "head"], ["y"]))
    down = 2 ** len(widths)
    graph = helper.make_graph(
        nodes,
        "conv_net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, *size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8, size[0] // down, size[1] // down])],
        weights,
    )
    return _model(graph, props)


def ultralytics_yolov8_model(raw: np.ndarray, names: Sequence[str], size: int = 64,
                             kpt_shape: tuple[int, int] | None = None) -> onnx.ModelProto:
    """A YOLOv8-head detector as Ultralytics exports it, with Ultralytics' metadata keys and no edgepipe key.

    images (1, 3, size, size) float32 -> output0 = raw whatever the image (the graph reads its input, times zero).
    raw: (1, 4 + C, N) float32, per column cx, cy, w, h in input pixels, then C class scores; names: the C names.
    kpt_shape: (K, D) for a pose model (task "pose"): raw is then (1, 4 + C + K * D, N), each column's keypoints
    x, y (input pixels) and, when D = 3, visibility after the class scores.
    """
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Reshape", ["z", "shape"], ["z3"]),
        helper.make_node("Add", ["raw", "z3"], ["output0"]),  # depends on the input, equals raw
    ]
    graph = helper.make_graph(
        nodes, "v8", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(raw.shape))],
        [numpy_helper.from_array(raw.astype(np.float32), "raw"),
         numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
         numpy_helper.from_array(np.array([1, 1, 1], np.int64), "shape")],
    )
    pose = {"task": "pose", "kpt_shape": str(list(kpt_shape))} if kpt_shape else {"task": "detect"}
    return _model(graph, {"author": "Ultralytics", "stride": "32", "imgsz": f"[{size}, {size}]",
                          "names": str(dict(enumerate(names))), **pose})


def save(model: onnx.ModelProto, path: Path) -> Path:
    """Write model to path and return the path."""
    onnx.save(model, str(path))
    return path


def course_as_yolov8(course: onnx.ModelProto, names: Sequence[str], size: int) -> onnx.ModelProto:
    """A trained course YOLO (raw (B, A*(5+C), S, S) output, metadata anchors) rewritten as an Ultralytics YOLOv8
    export: output0 (B, 4+C, N) = cx, cy, w, h in input pixels, then each class's score sigmoid(to) * softmax(c),
    with Ultralytics' metadata keys only. Its detections are the course model's: a real detector in that format."""
    meta = json.loads(next(p.value for p in course.metadata_props if p.key == "edgepipe"))
    anchors = np.array(meta["anchors"], np.float32)
    raw = course.graph.output[0]
    a, c = len(anchors), len(names)
    s = raw.type.tensor_type.shape.dim[2].dim_value
    rows, cols = np.meshgrid(np.arange(s), np.arange(s), indexing="ij")
    consts = {
        "v8_shape": np.array([0, a, 5 + c, s * s], np.int64),
        "v8_splits": np.array([2, 2, 1, c], np.int64),
        "v8_cell": (np.stack([cols.ravel(), rows.ravel()])[None, None] * size / s).astype(np.float32),
        "v8_scale": np.array(size / s, np.float32),
        "v8_anchor": (anchors * size / s).reshape(1, a, 2, 1),
        "v8_out": np.array([0, 4 + c, a * s * s], np.int64),
    }
    nodes = [
        helper.make_node("Reshape", [raw.name, "v8_shape"], ["v8_p"]),  # (B, A, 5+C, S*S)
        helper.make_node("Split", ["v8_p", "v8_splits"], ["v8_xy", "v8_wh", "v8_o", "v8_c"], axis=2),
        helper.make_node("Sigmoid", ["v8_xy"], ["v8_sxy"]),
        helper.make_node("Mul", ["v8_sxy", "v8_scale"], ["v8_oxy"]),
        helper.make_node("Add", ["v8_oxy", "v8_cell"], ["v8_center"]),  # (B, A, 2, S*S) input pixels
        helper.make_node("Exp", ["v8_wh"], ["v8_ewh"]),
        helper.make_node("Mul", ["v8_ewh", "v8_anchor"], ["v8_size"]),
        helper.make_node("Sigmoid", ["v8_o"], ["v8_pc"]),
        helper.make_node("Softmax", ["v8_c"], ["v8_prob"], axis=2),
        helper.make_node("Mul", ["v8_prob", "v8_pc"], ["v8_scores"]),
        helper.make_node("Concat", ["v8_center", "v8_size", "v8_scores"], ["v8_all"], axis=2),  # (B, A, 4+C, S*S)
        helper.make_node("Transpose", ["v8_all"], ["v8_t"], perm=[0, 2, 1, 3]),  # (B, 4+C, A, S*S)
        helper.make_node("Reshape", ["v8_t", "v8_out"], ["output0"]),
    ]
    graph = onnx.GraphProto()
    graph.CopyFrom(course.graph)
    graph.node.extend(nodes)
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + c, a * s * s]))
    model = helper.make_model(graph, opset_imports=list(course.opset_import), ir_version=course.ir_version)
    for key, value in {"author": "Ultralytics", "task": "detect", "stride": "32", "imgsz": f"[{size}, {size}]",
                       "names": str(dict(enumerate(names)))}.items():
        model.metadata_props.add(key=key, value=value)
    return model
