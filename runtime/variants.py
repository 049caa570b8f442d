"""Variants of an ONNX model, made without PyTorch: fp16, int8 static quantization (QDQ), uint8 frame input.

They live on the runtime floor because they need only onnx and onnxruntime: `edgepipe export` (the PyTorch side)
makes them from the models it exports, and `edgepipe quantize` from any ONNX detector, on an edge box too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import write_atomic
from edgepipe.runtime.metadata import METADATA_KEY, ModelMeta, to_metadata_props
from edgepipe.runtime.progress import Progress
from edgepipe.runtime.session import load

log = logging.getLogger("edgepipe.runtime")


def check(proto: onnx.ModelProto) -> None:
    """onnx.checker (full) and strict shape inference must pass."""
    onnx.checker.check_model(proto, full_check=True)
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)


def onnx_path(out: str | Path) -> Path:
    """out as a Path when it names an .onnx file; UserError otherwise (checked before any work)."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise UserError(f"output must be an .onnx path, but got {out}")
    return out


def save_model(proto: onnx.ModelProto, out: str | Path) -> Path:
    """Write proto to out (.onnx) whole or not at all, creating its folder; returns out."""
    out = onnx_path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(out, proto.SerializeToString())


def with_meta(proto: onnx.ModelProto, meta: ModelMeta) -> onnx.ModelProto:
    """proto with its "edgepipe" metadata key set to meta (other keys, e.g. Ultralytics', kept). Changes proto."""
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in to_metadata_props(meta).items():
        proto.metadata_props.add(key=key, value=value)
    return proto


def fp16_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and activations, fp16 input and output (the runtime feeds fp16 to fp16 models)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    half = convert_float_to_float16(model, keep_io_types=False)
    check(half)
    return half


class _Frames(CalibrationDataReader):
    """Feeds preprocessed calibration images to the quantizer, one at a time, counted on a progress bar."""

    def __init__(self, name: str, batch: np.ndarray, progress: Progress) -> None:
        self.items = iter([{name: batch[i : i + 1]} for i in range(len(batch))])
        self.progress = progress

    def get_next(self) -> dict | None:
        item = next(self.items, None)
        if item is not None:
            self.progress.update()
        return item


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


def int8_model(
    src: str | Path, calibration: np.ndarray, keep_head_fp32: bool = True, keep_stem_fp32: bool = True,
    progress: bool = True,
) -> onnx.ModelProto:
    """Static int8 quantization in QDQ format (per-channel int8 weights, uint8 activations) of the model at src,
    calibrated on preprocessed real images. The metadata is src's.

    calibration: (N, C, H, W) float32, the model's own preprocessing of N images. keep_head_fp32: leave the output
    head in fp32 (see head_nodes); keep_stem_fp32: the convolutions on the input image too (see stem_nodes).
    Accuracy is not assumed: measure the result (export does, on the held-out split).
    """
    model = onnx.load(str(src))
    excluded = (head_nodes(model) if keep_head_fp32 else []) + (stem_nodes(model) if keep_stem_fp32 else [])
    name = model.graph.input[0].name
    root = logging.getLogger()
    level = root.level
    if not log.isEnabledFor(logging.DEBUG):  # the quantizer's own advice on the root logger: behind --verbose
        root.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp, Progress(len(calibration), "int8 calibration", progress) as bar:
            source, staged = Path(tmp) / "source.onnx", Path(tmp) / "int8.onnx"
            onnx.save(model, str(source))  # the quantizer writes SOURCE-inferred.onnx beside it: here, not the user's
            quantize_static(str(source), str(staged), _Frames(name, calibration, bar), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=excluded)
            quantized = onnx.load(str(staged))
    finally:
        root.setLevel(level)
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(model.metadata_props)
    return quantized


def uint8_input_model(model: onnx.ModelProto, meta: ModelMeta) -> onnx.ModelProto:
    """model behind a prefix that takes frames as the camera gives them: uint8 (B, H, W, C) BGR (C = 1 for gray
    models), already letterboxed or resized to the input size; the graph casts, moves the channels first, puts them
    in the model's order and normalizes, (pixel / 255 - mean) / std. The metadata's dtype becomes "uint8", which
    tells the runtime to feed such frames. Four times fewer bytes per frame than float32 to copy to a GPU.
    """
    spec = meta.preprocess
    if spec.dtype != "float32":
        raise UserError(f"--uint8-input needs a float32 model, but this one takes {spec.dtype}")
    proto = onnx.ModelProto()
    proto.CopyFrom(model)
    graph = proto.graph
    frames = graph.input[0]
    dims = frames.type.tensor_type.shape.dim
    if len(dims) != 4 or frames.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise UserError(f"--uint8-input needs one float (B, C, H, W) image input, but {frames.name} is not")
    name, normalized = frames.name, f"{frames.name}_normalized"
    for node in graph.node:
        node.input[:] = [normalized if i == name else i for i in node.input]
    c, (h, w) = spec.channels, spec.input_size
    planes = {"RGB": [2, 1, 0], "BGR": [0, 1, 2], "GRAY": [0]}[spec.channel_order]
    scale = np.array([1 / (255 * s) for s in spec.std], np.float32).reshape(1, c, 1, 1)
    shift = np.array([-m / s for m, s in zip(spec.mean, spec.std, strict=True)], np.float32).reshape(1, c, 1, 1)
    graph.initializer.extend([numpy_helper.from_array(np.array(planes, np.int64), "uint8_planes"),
                              numpy_helper.from_array(scale, "uint8_scale"),
                              numpy_helper.from_array(shift, "uint8_shift")])
    prefix = [
        helper.make_node("Cast", [name], ["uint8_as_float"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["uint8_as_float"], ["uint8_nchw"], perm=[0, 3, 1, 2]),  # (B, C, H, W)
        helper.make_node("Gather", ["uint8_nchw", "uint8_planes"], ["uint8_ordered"], axis=1),  # BGR -> model order
        helper.make_node("Mul", ["uint8_ordered", "uint8_scale"], ["uint8_scaled"]),
        helper.make_node("Add", ["uint8_scaled", "uint8_shift"], [normalized]),
    ]
    nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    batch = dims[0].dim_param or dims[0].dim_value
    graph.input[0].CopyFrom(helper.make_tensor_value_info(name, TensorProto.UINT8, [batch, h, w, c]))
    check(proto)
    return with_meta(proto, replace(meta, preprocess=replace(spec, dtype="uint8")))


def output_difference(a: str | Path, b: str | Path, frames: Sequence[np.ndarray]) -> tuple[float, float]:
    """max |a - b| and max |a - b| / max |a| of two models' first outputs on the same frames, each preprocessed as
    its own metadata says (fp16, uint8 or float32 input): the parity of a variant b with its model a."""
    outs = [load(path, providers="cpu", warmup=0)(list(frames))[0][0].astype(np.float32) for path in (a, b)]
    diff = float(np.abs(outs[0] - outs[1]).max()) if outs[0].size else 0.0
    return diff, diff / max(float(np.abs(outs[0]).max()) if outs[0].size else 0.0, 1e-12)
