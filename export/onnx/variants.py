"""Smaller and faster variants of an exported model: fp16 weights, int8 static quantization (QDQ)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgepipe.export.onnx.export import check, write_atomic


def to_fp16(src: str | Path, out: str | Path) -> Path:
    """fp16 weights and activations, fp16 input and output (the runtime feeds fp16 to fp16 models)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=False)
    check(half)
    return write_atomic(half, out)


class _Frames(CalibrationDataReader):
    """Feeds preprocessed calibration batches to the quantizer, one image at a time."""

    def __init__(self, name: str, batch: np.ndarray) -> None:
        self.items = iter([{name: batch[i : i + 1]} for i in range(len(batch))])

    def get_next(self) -> dict | None:
        return next(self.items, None)


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """The nodes that produce the graph's outputs directly, walking back to the last Conv / Gemm / MatMul: they
    stay fp32. A detector's output mixes box offsets and class logits in one tensor; quantizing it with one
    scale rounds the small logits away (on a YOLOv8n, every score became 0)."""
    producers = {o: n for n in model.graph.node for o in n.output}
    keep, frontier = [], [o.name for o in model.graph.output]
    while frontier:
        node = producers.get(frontier.pop())
        if node is None or node.name in keep:
            continue
        keep.append(node.name)
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            frontier += [i for i in node.input if i in producers]
    return keep


def stem_nodes(model: onnx.ModelProto) -> list[str]:
    """The Conv nodes reading the graph's input image directly: they stay fp32. With 3 input channels their dot
    products are short, so int8 saves little there while its quantize/reorder steps cost more: keeping the stem in
    fp32 made the int8 small YOLO faster (measured: docs/export.md)."""
    inputs = {i.name for i in model.graph.input}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs]


def to_int8(
    src: str | Path, out: str | Path, calibration: np.ndarray, keep_head_fp32: bool = True, keep_stem_fp32: bool = True
) -> Path:
    """Static int8 quantization in QDQ format (per-channel weights), calibrated on preprocessed real samples.

    calibration: (N, C, H, W) float32 batches from the model's data. keep_head_fp32: leave the output head in
    fp32 (see head_nodes); keep_stem_fp32: the convolutions on the input image too (see stem_nodes). Accuracy is
    not assumed: evaluate the written file (`edgepipe eval`).
    """
    model = onnx.load(str(src))
    excluded = (head_nodes(model) if keep_head_fp32 else []) + (stem_nodes(model) if keep_stem_fp32 else [])
    name = model.graph.input[0].name
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "int8.onnx"
        quantize_static(str(src), str(staged), _Frames(name, calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=excluded)
        quantized = onnx.load(str(staged))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    return write_atomic(quantized, out)


def max_relative_diff(a_path: str | Path, b_path: str | Path, batch: np.ndarray) -> float:
    """max |a - b| / max |a| of two models' first outputs on the same batch (fp16 vs fp32 parity)."""
    outs = []
    for path in (a_path, b_path):
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = batch.astype(np.float16 if s.get_inputs()[0].type == "tensor(float16)" else np.float32)
        outs.append(s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float32))
    return float(np.abs(outs[0] - outs[1]).max() / max(np.abs(outs[0]).max(), 1e-12))
