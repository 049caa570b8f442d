"""Parity inputs of the two-input models: the Siamese network (two image batches) and its head (two embeddings)."""

from __future__ import annotations

import numpy as np

from edgepipe.runtime.metadata import ModelMeta
from edgepipe.runtime.preprocessing import preprocess


def pair_inputs(name: str, meta: ModelMeta, frames: list[np.ndarray], extra: dict) -> tuple[np.ndarray, ...]:
    """The parity inputs of a two-input zoo model, () for the others (they take one batch of frames).

    "siamese": the sample faces and the same faces one place further (pairs of different people), preprocessed:
    two (N, 3, H, W) float32. "siamese-head": the dev embedding pairs its checkpoint keeps (extra["samples"], the
    first half paired with the second), or for the zoo's untrained head unit vectors (seed 0): two (N, D) float32.
    """
    if name == "siamese":
        batch = preprocess(frames, meta.preprocess).batch
        return batch, np.roll(batch, 1, axis=0)
    if name == "siamese-head":
        if "samples" in extra:
            e = np.asarray(extra["samples"], np.float32)
        else:
            e = np.random.default_rng(0).normal(size=(2 * len(frames), meta.embedding_size)).astype(np.float32)
            e /= np.linalg.norm(e, axis=1, keepdims=True)
        half = len(e) // 2
        return e[:half], e[half : 2 * half]
    return ()
