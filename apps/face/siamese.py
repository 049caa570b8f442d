"""The Siamese head at the edge: a probe's and the enrolled embeddings -> the probability of the same person."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery import EncoderId
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.session import Model

MIN_PROBABILITY = 0.5  # accept when the head's probability is at least this: the logistic unit's own boundary
HOW_TO_MAKE = ("train one for the encoder (`edgepipe train siamese --encoder ENCODER.onnx`) and export it "
               "(`edgepipe export runs/siamese/best.pt --out head.onnx`)")


class PairHead:
    """The course's verification as binary classification, exported alone (`edgepipe export` of a siamese-head):
    two (B, D) float32 embedding inputs -> (B,) probabilities sigmoid(w . |e1 - e2| + b), run by onnxruntime.

    encoder_sha256: the encoder whose embeddings it was trained on ("" when its metadata names none).
    """

    def __init__(self, model: Model, embedding_size: int) -> None:
        name = Path(model.name).name
        meta = model.meta
        dims = [len(i.shape) for i in model.inputs]
        if meta.task != "verify" or dims != [2, 2]:
            raise UserError(f"{name} is not a Siamese head (task 'verify' with two (batch, D) embedding inputs; it "
                             f"has task {meta.task!r} and {len(dims)} input(s)): {HOW_TO_MAKE}")
        if meta.embedding_size != embedding_size:
            raise UserError(f"{name} compares {meta.embedding_size}-d embeddings, but the encoder gives "
                             f"{embedding_size}-d ones: {HOW_TO_MAKE}")
        self.model = model
        self.name = name
        self.encoder_sha256 = meta.encoder_sha256

    def check_encoder(self, encoder: EncoderId) -> None:
        """Refuse a head trained on another encoder's embeddings than the gallery's (when its metadata names one)."""
        if self.encoder_sha256 and self.encoder_sha256 != encoder.sha256:
            raise UserError(f"{self.name} was trained on the embeddings of another encoder (sha256 "
                             f"{self.encoder_sha256[:12]}...) than the gallery's {encoder.describe()}: {HOW_TO_MAKE}")

    def __call__(self, probe: np.ndarray, stored: np.ndarray) -> np.ndarray:
        """probe: (D,) float; stored: (K, D) float. Returns (K,) float32: the probability that the probe and each
        stored embedding show the same person."""
        first = np.repeat(np.asarray(probe, np.float32)[None], len(stored), axis=0)
        (p,) = self.model.run(first, np.asarray(stored, np.float32))
        return np.asarray(p, np.float32).reshape(len(stored))
