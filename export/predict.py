"""One prediction path for PyTorch checkpoints and ONNX files: the runtime's preprocessing, postprocess's decoding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from edgepipe.export.options import EVAL_CONF, EVAL_IOU, EVAL_MAX_DET
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.nms_output import NMS_HEAD, check_nms_settings
from edgepipe.runtime.metadata import ModelMeta, from_flat, project_version
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.progress import Progress


def meta_from_flat(flat: dict, metrics: dict | None = None) -> ModelMeta:
    """The runtime's ModelMeta for a recipe's flat keys (the one schema export writes into the ONNX file)."""
    from dataclasses import replace

    meta = from_flat(flat, "edgepipe")
    clean = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
    return replace(meta, metrics=clean, version=project_version())


class TorchPredictor:
    """A PyTorch model behind the runtime Model's call: frames -> (outputs, transforms). fixed_batch: 0, any batch
    size runs."""

    def __init__(self, model: nn.Module, meta: ModelMeta, flatten: bool = False) -> None:
        self.model, self.meta, self.flatten = model.eval(), meta, flatten
        self.fixed_batch = 0

    def __call__(self, frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Transform]]:
        pre = preprocess(list(frames), self.meta.preprocess)
        x = torch.from_numpy(pre.batch)
        with torch.no_grad():
            out = self.model(x.flatten(1) if self.flatten else x)
        return [out.numpy()], pre.transforms


class OnnxPredictor:
    """An ONNX file through runtime.load: the same call as TorchPredictor."""

    def __init__(self, path: str, provider: str = "cpu") -> None:
        from edgepipe.runtime.session import load

        self.model = load(path, providers=provider)
        self.meta = self.model.meta
        dim = self.model.inputs[0].shape[0] if self.model.inputs[0].shape else None
        self.fixed_batch = dim if isinstance(dim, int) else 0  # a file exported for one batch size gets that size

    def __call__(self, frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Transform]]:
        return self.model(list(frames))


def _chunks(predictor, frames: Sequence[np.ndarray], batch: int, progress: bool
            ) -> Iterator[tuple[np.ndarray, list[Transform]]]:
    """The first output and the transforms of each batch of frames, in order, counted on a progress bar. A predictor
    with a fixed_batch (an ONNX file exported for one batch size) gets batches of that size."""
    batch = predictor.fixed_batch or batch
    with Progress(len(frames), "evaluating", progress) as bar:
        for i in range(0, len(frames), batch):
            outputs, transforms = predictor(frames[i : i + batch])
            bar.update(len(transforms))
            yield outputs[0], transforms


def run_batched(predictor, frames: Sequence[np.ndarray], batch: int = 32, progress: bool = False
                ) -> tuple[np.ndarray, list[Transform]]:
    """The first output for all frames, batch by batch: (N, ...) and N transforms."""
    outs, transforms = [], []
    for out, t in _chunks(predictor, frames, batch, progress):
        outs.append(out.astype(np.float32))
        transforms += t
    return np.concatenate(outs), transforms


def detection_settings(meta: ModelMeta, conf: float | None = None, iou: float | None = None
                       ) -> tuple[float, float, int]:
    """The score threshold, NMS IoU and max detections per image a detector is evaluated at: conf and iou when
    given, else EVAL_CONF and EVAL_IOU; for a model with NMS inside its graph ("yolo-nms"), the graph's own, and a
    UserError for thresholds it cannot give."""
    if meta.head == NMS_HEAD:
        conf = meta.nms.get("conf", 0.0) if conf is None else conf
        iou = meta.nms.get("iou", 0.0) if iou is None else iou
        check_nms_settings(meta.nms, conf, iou)
        return conf, iou, int(meta.nms["max_det"])
    return (EVAL_CONF if conf is None else conf), (EVAL_IOU if iou is None else iou), EVAL_MAX_DET


def detect(predictor, frames: Sequence[np.ndarray], conf: float | None = None, iou: float | None = None,
           progress: bool = False) -> list[Detections]:
    """Detections per frame in original pixels, decoded batch by batch by the head named in the metadata, at
    detection_settings(meta, conf, iou)."""
    meta = predictor.meta
    conf, iou, max_det = detection_settings(meta, conf, iou)
    found = []
    for out, transforms in _chunks(predictor, frames, 32, progress):
        found += decode(meta.head, out, transforms, conf, iou, max_det, meta.class_names, **meta.decode_options())
    return found


def classify(predictor, frames: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Predicted class ids (N,): argmax of logits, or probability > 0.5 for one-output (logistic) models."""
    out, _ = run_batched(predictor, frames, progress=progress)
    return (out[:, 0] > 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(1)


def embed(predictor, frames: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Embeddings (N, D) float32."""
    return run_batched(predictor, frames, progress=progress)[0]
