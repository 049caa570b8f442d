"""Export a checkpoint or a zoo model to ONNX: checked graph, metadata, parity against PyTorch, variants."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from edgepipe.export.models import REGISTRY, build
from edgepipe.export.onnx.nms_graph import course_postprocess_graph, with_nms
from edgepipe.export.options import ExportOptions
from edgepipe.export.predict import meta_from_flat
from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.nms_output import NMS_HEAD
from edgepipe.runtime.metadata import ModelMeta
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.variants import check, save_model, with_meta

log = logging.getLogger("edgepipe.export")

MIN_OPSET, MAX_OPSET = 13, 21
IR_VERSION = 8  # readable by onnxruntime >= 1.10
DENSE = ("logistic", "shallow", "deep", "softmax")
MAX_DET = 100  # detections the in-graph NMS keeps per class and image (the Python path keeps them per image)


@dataclass(frozen=True)
class Source:
    """What to export: the module (eval mode), its metadata, and sample frames of its data for parity."""

    name: str
    model: nn.Module
    meta: ModelMeta
    frames: list[np.ndarray]
    inputs: tuple[np.ndarray, ...] = ()  # parity inputs of a two-input model (export.onnx.pairs), () for the rest


@dataclass(frozen=True)
class ExportResult:
    """The written file, its size, the export time and the parity against PyTorch on real samples."""

    path: Path
    size_mb: float
    seconds: float
    max_abs_diff: float
    opset: int


class Flat(nn.Module):
    """The dense course networks take (B, n_x): exported behind a flatten so the input is an image (B, 1, 8, 8)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.flatten(1))


def load_source(name_or_checkpoint: str | Path, imgsz: tuple[int, int] | None = None, samples: int = 8) -> Source:
    """A checkpoint (runs/NAME/best.pt) or a zoo model name (fresh weights, metadata from the registry)."""
    from edgepipe.export.data.samples import sample_frames
    from edgepipe.export.onnx.pairs import pair_inputs

    text = str(name_or_checkpoint)
    extra: dict = {}
    if text in REGISTRY:
        entry = REGISTRY[text]
        kwargs = {"input_size": tuple(imgsz)} if imgsz and entry.family == "yolo" else {}
        model = build(text, **kwargs).eval()
        flat = default_meta(text, model, imgsz)
        metrics: dict = {}
    elif text.endswith((".pt", ".pth")) or Path(text).exists():
        ckpt = load_checkpoint(text)
        model = model_from_checkpoint(ckpt)
        flat, metrics, text, extra = dict(ckpt["meta"]), ckpt.get("metrics", {}), ckpt["model"], ckpt.get("extra", {})
    else:
        raise UserError(f"model must be a checkpoint file or one of {sorted(REGISTRY)}, but got {text!r}")
    if text in DENSE:
        model = Flat(model).eval()
    meta = meta_from_flat(flat, metrics)
    frames = sample_frames(meta, samples)
    return Source(text, model, meta, frames, pair_inputs(text, meta, frames, extra))


def default_meta(name: str, model: nn.Module, imgsz: tuple[int, int] | None) -> dict:
    """Flat metadata for an untrained zoo model: its task, input, and placeholder class names."""
    entry = REGISTRY[name]
    if entry.family == "windows":
        from edgepipe.export.data.windows import window_meta

        return window_meta(convolutional=entry.task == "detect", input_size=imgsz)
    shape = entry.input_shape
    if entry.task == "verify" and len(shape) == 1:  # the Siamese head takes embeddings of the zoo's face encoder
        shape = REGISTRY["facenet"].input_shape
    flat = {"task": entry.task, "model_name": name, "mean": [0.0], "std": [1.0], "resize": "resize"}
    if len(shape) == 1:
        flat.update(imgsz=[8, 8], channel_order="GRAY")
    else:
        flat.update(imgsz=list(imgsz or shape[1:]), channel_order="GRAY" if shape[0] == 1 else "RGB")
    if entry.task == "classify":
        n = 2 if name == "logistic" else (10 if len(shape) == 1 or name == "lenet5" else 1000)
        flat["names"] = [str(i) for i in range(n)]
    elif entry.task == "detect":
        flat.update(head="yolo-course", anchors=[list(a) for a in model.anchors], resize="letterbox",
                    names=[f"class{i}" for i in range(model.num_classes)])
    else:
        flat.update(embedding_size=128, distance="squared_l2")
    return flat


@dataclass(frozen=True)
class Built:
    """An exported graph before it is written: the checked proto with its metadata, its parity against PyTorch
    (max |onnxruntime - PyTorch| on real samples; with nms, of the graph before its NMS) and the export time."""

    proto: onnx.ModelProto
    max_abs_diff: float
    seconds: float
    opset: int


def build_onnx(
    source: Source, opset: int = ExportOptions.opset, simplify: bool = False, nms: bool = False,
    conf: float = ExportOptions.conf, iou: float = ExportOptions.iou, max_det: int = MAX_DET,
    tolerance: float = ExportOptions.tolerance,
) -> Built:
    """source's model as a checked ONNX graph: dynamic batch axis, metadata, checker and shape inference, parity
    (max |onnxruntime - PyTorch| on real samples <= tolerance x max(1, max |output|), else UserError).
    nms: append the course head's decode + NonMaxSuppression (detectors only); the metadata then names the
    "yolo-nms" head and the graph's conf, iou and max_det."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"opset must be in [{MIN_OPSET}, {MAX_OPSET}], but got {opset}")
    if nms:
        check_nms(source)
    t0 = time.perf_counter()
    inputs = source.inputs or (preprocess(source.frames, source.meta.preprocess).batch,)
    proto = _torch_to_onnx(source.model, inputs, opset, source.meta.head == "windows")
    if simplify:
        import onnxslim

        proto = onnxslim.slim(proto)
    meta = replace(source.meta, exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    with_meta(proto, meta)
    diff, scale = parity(source.model, proto, inputs)
    if diff > tolerance * max(1.0, scale):
        raise UserError(f"parity check failed: max |onnxruntime - PyTorch| = {diff:.3g} > {tolerance:g} x "
                         f"max(1, max |output|) = {tolerance * max(1.0, scale):.3g}; nothing was written")
    if nms:
        model = source.model
        post = course_postprocess_graph(np.array(model.anchors), model.num_classes, model.grid_size,
                                        model.input_size, conf, iou, max_det, opset)
        proto = with_meta(with_nms(proto, post),
                          replace(meta, head=NMS_HEAD, anchors=(), nms={"conf": conf, "iou": iou, "max_det": max_det}))
    check(proto)
    return Built(proto, diff, time.perf_counter() - t0, opset)


def export_onnx(
    source: Source, out: str | Path, opset: int = ExportOptions.opset, simplify: bool = False, nms: bool = False,
    conf: float = ExportOptions.conf, iou: float = ExportOptions.iou, max_det: int = MAX_DET,
    tolerance: float = ExportOptions.tolerance,
) -> ExportResult:
    """build_onnx, then the graph written to out (nothing written when a check fails)."""
    built = build_onnx(source, opset, simplify, nms, conf, iou, max_det, tolerance)
    path = save_model(built.proto, out)
    size = path.stat().st_size / 2**20
    log.info("exported %s to %s (%.2f MB) in %.1f s, parity %.2g", source.name, path, size, built.seconds,
             built.max_abs_diff)
    return ExportResult(path, size, built.seconds, built.max_abs_diff, opset)


def check_nms(source: Source) -> None:
    """Raise unless source is a course YOLO detector, the only head whose decode + NMS can go inside the graph."""
    if source.meta.head != "yolo-course":
        raise UserError(f"--nms needs a course YOLO detector, but {source.name} is a {source.meta.task} model")


def input_names(inputs: tuple[np.ndarray, ...]) -> list[str]:
    """The exported graph's input names: "images" for one batch; "images1", "images2" for a pair of image batches,
    "embeddings1", "embeddings2" for a pair of embedding batches (the Siamese network and its head)."""
    if len(inputs) == 1:
        return ["images"]
    kind = "images" if inputs[0].ndim == 4 else "embeddings"
    return [f"{kind}{i + 1}" for i in range(len(inputs))]


def _torch_to_onnx(model: nn.Module, inputs: tuple[np.ndarray, ...], opset: int, dynamic_size: bool = False
                   ) -> onnx.ModelProto:
    """torch.onnx.export (the TorchScript exporter, dynamo=False: no onnxscript needed) of model on one example of
    each input, with a dynamic batch, and dynamic height and width when dynamic_size (a fully convolutional model:
    its output grows with its input)."""
    names = input_names(inputs)
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic_size else {0: "batch"}
    out_axes = {0: "batch", 2: "rows", 3: "cols"} if dynamic_size else {0: "batch"}
    examples = tuple(torch.from_numpy(x[:1]) for x in inputs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        torch.onnx.export(model, examples, path, input_names=names, output_names=["output"], opset_version=opset,
                          dynamic_axes={**dict.fromkeys(names, axes), "output": out_axes}, dynamo=False)
        proto = onnx.load(path)
    proto.ir_version = min(proto.ir_version, IR_VERSION)
    return proto


def parity(model: nn.Module, proto: onnx.ModelProto, inputs: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """max |onnxruntime (CPU) - PyTorch| over real, preprocessed samples (one batch per input), and max |PyTorch
    output|.

    The tolerance applies to outputs of magnitude up to 1 and scales with larger ones (an untrained ResNet-152's
    logits reach the hundreds, where float32 summation order alone moves the last digits)."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = [x.astype(np.float32) for x in inputs]
    got = session.run(None, {i.name: x for i, x in zip(session.get_inputs(), feeds, strict=True)})[0]
    with torch.no_grad():
        expected = model(*(torch.from_numpy(x) for x in feeds)).numpy()
    return float(np.abs(got.astype(np.float32) - expected).max()), float(np.abs(expected).max())
