"""Tiny ONNX graphs built with onnx.helper for runtime tests: no weights, no downloads, CPU provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 9  # onnxruntime 1.31 reads IR <= 13; onnx 1.23 writes 14 by default


def conv_model(
    channels: int = 3,
    size: tuple[int | str, int | str] = (32, 32),
    batch: int | str = "N",
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION)
    for key, value in (props or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model, w, b


def conv_reference(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """What conv_model computes, in numpy: x (B, C, H, W) -> (B, 4, H, W)."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    _, _, h, wd = x.shape
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for i in range(3):
        for j in range(3):
            out += np.einsum("bchw,oc->bohw", xp[:, :, i : i + h, j : j + wd], w[:, :, i, j])
    return np.maximum(out + b[None, :, None, None], 0)


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path
