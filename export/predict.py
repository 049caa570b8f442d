"""One prediction path for PyTorch checkpoints and ONNX files: the runtime's preprocessing, postprocess's decoding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.detections import Detections
from edgepipe.runtime.metadata import ModelMeta, from_flat, project_version
from edgepipe.runtime.preprocessing import preprocess


def meta_from_flat(flat: dict, metrics: dict | None = None) -> ModelMeta:
    """The runtime's ModelMeta for a recipe's flat keys (the one schema export writes into the ONNX file)."""
    from dataclasses import replace

    meta = from_flat(flat, "edgepipe")
    clean = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
    return replace(meta, metrics=clean, version=project_version())


class TorchPredictor:
    """A PyTorch model behind the runtime Model's call: frames -> (outputs, transforms)."""

    def __init__(self, model: nn.Module, meta: ModelMeta, flatten: bool = False) -> None:
        self.model, self.meta, self.flatten = model.eval(), meta, flatten

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

    def __call__(self, frames: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Transform]]:
        return self.model(list(frames))


def run_batched(predictor, frames: Sequence[np.ndarray], batch: int = 32) -> tuple[np.ndarray, list[Transform]]:
    """The first output for all frames, batch by batch: (N, ...) and N transforms."""
    outs, transforms = [], []
    for i in range(0, len(frames), batch):
        o, t = predictor(frames[i : i + batch])
        outs.append(o[0].astype(np.float32))
        transforms += t
    return np.concatenate(outs), transforms


def detect(predictor, frames: Sequence[np.ndarray], conf: float = 0.001, iou: float = 0.5, max_det: int = 100
           ) -> list[Detections]:
    """Detections per frame in original pixels, decoded by the head named in the metadata."""
    meta = predictor.meta
    out, transforms = run_batched(predictor, frames)
    return decode(meta.head, out, transforms, conf, iou, max_det, meta.class_names, **meta.decode_options())


def classify(predictor, frames: Sequence[np.ndarray]) -> np.ndarray:
    """Predicted class ids (N,): argmax of logits, or probability > 0.5 for one-output (logistic) models."""
    out, _ = run_batched(predictor, frames)
    return (out[:, 0] > 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(1)


def embed(predictor, frames: Sequence[np.ndarray]) -> np.ndarray:
    """Embeddings (N, D) float32."""
    return run_batched(predictor, frames)[0]
