"""The detection pipeline: frames -> the runtime's preprocess -> onnxruntime -> decode + NMS -> frame pixels."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgepipe.postprocess import decoders
from edgepipe.postprocess._check import check_unit
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.nms_output import NMS_HEAD, check_nms_settings
from edgepipe.runtime.binding import Binding
from edgepipe.runtime.preprocessing import Preprocessed, PreprocessSpec, preprocess
from edgepipe.runtime.session import Model

log = logging.getLogger("edgepipe.detect")


@dataclass(frozen=True)
class Result:
    """One frame's detections (original-frame pixels) and the milliseconds spent in inference and postprocess."""

    detections: Detections
    infer_ms: float
    post_ms: float


class Detector:
    """A detection model with its decoding settings. prepare(image) makes the network input (any thread);
    infer(prepared) runs the model and decodes; detector(images) does both for a list of frames.

    conf, iou: score and NMS thresholds. max_det: detections kept per frame. classes: class ids kept (empty: all).
    agnostic: NMS across classes too (one box per object even when the model scores it high for two classes).
    rect: run a fixed-size YOLOv8 export at the smallest size that holds the frame (a letterbox padded only to the
    next multiple of its largest stride, as Ultralytics runs its PyTorch models), re-targeted once per frame size
    (Model.at_size); off, or for any other model, frames are letterboxed to the model's own size.
    """

    def __init__(
        self, model: Model, conf: float = 0.25, iou: float = 0.45, max_det: int = 300, classes: Sequence[int] = (),
        agnostic: bool = False, rect: bool = True,
    ) -> None:
        meta = model.meta
        name = Path(model.name).name
        if meta.task != "detect":
            raise UserError(f"{name} is not a detector (its metadata says task {meta.task!r}): give a detection model "
                             f"(task 'detect'), or describe it in a sidecar {name}.json or with the command's --meta "
                             "(--detector-meta) options: task=detect head=yolov8 ...")
        if meta.head not in decoders.HEADS:
            raise UserError(f"{name} names no detection head in its metadata (head {meta.head!r}); expected one of "
                            f"{tuple(decoders.HEADS)}: describe it in a sidecar {name}.json or with --meta "
                            "(--detector-meta) head=yolov8")
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise UserError(f"{name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a detector "
                             "takes one image batch and gives one output")
        _check_input_size(model)
        n = len(meta.class_names)
        bad = [c for c in classes if c < 0 or (n and c >= n)]
        if bad:
            raise UserError(f"classes must be ids >= 0 (and < {n} for {name}: {', '.join(meta.class_names)}), "
                             f"but got {bad}")
        if max_det < 1:
            raise UserError(f"--max-det must be >= 1, but got {max_det}")
        self.model = model
        self.spec, self.rect = _rect_spec(model, rect)
        self.meta = meta
        self.settings = {"conf_threshold": check_unit(conf, "--conf"), "iou_threshold": check_unit(iou, "--iou"),
                         "max_det": int(max_det), "class_names": meta.class_names,
                         "class_agnostic": bool(agnostic), **meta.decode_options()}
        if meta.head == NMS_HEAD:
            check_nms_settings(meta.nms, conf, iou, agnostic)
        self.classes = tuple(int(c) for c in classes)
        self._bindings: dict[tuple[int, ...], Binding] = {}

    def prepare(self, image: np.ndarray) -> Preprocessed:
        """image: (H, W, 3) uint8 BGR -> the network input (1, C, h, w) and its Transform."""
        return preprocess(image, self.spec)

    @property
    def fixed_batch(self) -> int:
        """The batch size the model's input declares (0: a dynamic batch axis, any batch runs)."""
        dim = self.model.inputs[0].shape[0]
        return dim if isinstance(dim, int) else 0

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """batch: (B, C, h, w) prepared frames of one size -> the model's raw output for them. Runs through an IO
        binding per input shape (the input buffer on the model's device, filled in place; on the CPU the same)."""
        key = batch.shape
        binding = self._bindings.get(key)
        if binding is None:
            binding = self._bindings[key] = self.model_for(batch).bind(batch.shape[0], batch.shape[2:])
        (raw,) = binding.run(batch).outputs()
        return raw

    def model_for(self, batch: np.ndarray) -> Model:
        """The model that runs batch: (B, C, h, w) prepared frames; with rect, the model re-targeted to (h, w)."""
        return self.model.at_size(batch.shape[2:]) if self.rect else self.model

    def decode(self, raw: np.ndarray, transforms: Sequence[Transform]) -> list[Detections]:
        """The raw output of a batch -> one Detections per frame (frame pixels), --classes applied."""
        dets = decoders.decode(self.meta.head, raw, transforms, **self.settings)
        return [d.filter(classes=self.classes) for d in dets] if self.classes else dets

    def infer(self, prepared: Preprocessed) -> list[Result]:
        """Run one prepared batch and decode it: one Result per frame."""
        t0 = time.perf_counter()
        (raw,) = self.model_for(prepared.batch).run(prepared.batch)
        t1 = time.perf_counter()
        dets = self.decode(raw, prepared.transforms)
        t2 = time.perf_counter()
        n = len(dets)
        return [Result(d, (t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n) for d in dets]

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> list[Detections]:
        """Frames (one (H, W, 3) uint8 BGR or a list) -> one Detections per frame, in frame pixels."""
        return [r.detections for r in self.infer(preprocess(images, self.spec))]


def parse_classes(items: Sequence[str], names: Sequence[str]) -> list[int]:
    """--classes values (ids or names, comma- or space-separated) -> class ids; unknown names raise UserError."""
    out = []
    for token in (t.strip() for item in items for t in item.split(",")):
        if not token:
            continue
        if token.lstrip("-").isdigit():
            out.append(int(token))
        elif token in names:
            out.append(list(names).index(token))
        else:
            raise UserError(f"--classes: unknown class {token!r}; the model's classes are {', '.join(names)}")
    return out


def _rect_spec(model: Model, rect: bool) -> tuple[PreprocessSpec, bool]:
    """(the model's spec, False), or for rect and a fixed-size letterboxed yolov8 model that can be re-targeted,
    (the spec that pads only to the next multiple of its largest anchor stride, True)."""
    spec = model.spec
    if not rect or model.meta.head != "yolov8" or spec.resize != "letterbox" or spec.dtype == "uint8" or \
            model.fixed_size is None:
        return spec, False
    stride, reason = model.anchor_stride()
    if not stride:
        log.info("%s runs at its fixed %dx%d whatever the frame size: it cannot be re-targeted (%s)",
                 Path(model.name).name, *spec.input_size, reason)
        return spec, False
    return replace(spec, stride=stride, auto_pad=True), True


def _check_input_size(model: Model) -> None:
    """A fixed-size model whose metadata (or --imgsz) names another size: a clear error instead of a bad feed."""
    shape = model.inputs[0].shape
    fixed = tuple(shape[1:3] if model.spec.dtype == "uint8" else shape[2:])  # uint8 frames are (B, H, W, C)
    size = model.meta.preprocess.input_size
    if len(fixed) == 2 and all(isinstance(d, int) for d in fixed) and fixed != tuple(size):
        raise UserError(f"{Path(model.name).name} has a fixed input size {fixed[0]}x{fixed[1]}, but --imgsz or its "
                         f"metadata asks for {size[0]}x{size[1]}: leave --imgsz out, or export with a dynamic size")

