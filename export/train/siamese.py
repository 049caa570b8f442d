"""Verification as binary classification: the Siamese head's recipe, on the embeddings of a frozen face encoder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgepipe.export.data.faces import identity_splits, kiosk_face_views
from edgepipe.export.metrics import pair_metrics
from edgepipe.export.options import RECIPE_EPOCHS
from edgepipe.export.predict import embed
from edgepipe.export.train.datasets import worker_rng
from edgepipe.export.train.loop import Recipe
from edgepipe.postprocess.errors import UserError

KIOSK_SHARE = 0.7  # of the views as the kiosk crops faces, as the encoder's own recipe (facenet_recipe)
SAMPLES = 16  # dev embedding pairs kept in the checkpoint: export's parity inputs
PAIRS = 64  # genuine and as many impostor pairs per step


def encoder_predictor(path: Path):
    """The face encoder the head works on: an .onnx file (through the runtime) or a facenet checkpoint. UserError
    unless it is an embedding model."""
    from edgepipe.export.evaluate import predictor_for

    if not Path(path).is_file():
        raise UserError(f"encoder not found: {path} (give the face encoder .onnx or a facenet checkpoint)")
    predictor = predictor_for(path)
    if predictor.meta.task != "embed":
        raise UserError(f"{path} is a {predictor.meta.task!r} model, not a face encoder (task 'embed')")
    return predictor


def embedded_views(predictor, faces: np.ndarray, views: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """views kiosk-mix views of each face (KIOSK_SHARE kiosk crops) through the encoder: embeddings (K * views, D)
    float32, identity-major, and their identities (K * views,)."""
    rng = np.random.default_rng(seed)
    size = predictor.meta.preprocess.input_size[0]
    frames = [v for f in faces for v in kiosk_face_views(f, views, rng, size, KIOSK_SHARE)]
    return embed(predictor, frames), np.repeat(np.arange(len(faces)), views)


def all_pairs(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j: first (P, D), second (P, D) embeddings and same (P,) bool (the same identity)."""
    i, j = np.triu_indices(len(labels), k=1)
    return embeddings[i], embeddings[j], labels[i] == labels[j]


def torch_head(head: nn.Module) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A PyTorch head as a function of two (P, D) float32 embedding arrays -> (P,) probabilities."""

    def probability(first: np.ndarray, second: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head(torch.from_numpy(first), torch.from_numpy(second)).numpy()

    return probability


def head_metrics(probability: Callable[[np.ndarray, np.ndarray], np.ndarray], embeddings: np.ndarray,
                 labels: np.ndarray) -> dict:
    """pair_metrics of a head's probability (as 1 - p: smaller means the same person) over every pair of
    embeddings (N, D), and of the squared distance under the keys distance_auc, distance_eer,
    distance_tar_at_far_1e-2 (the same pairs). probability: (P, D), (P, D) -> (P,)."""
    first, second, same = all_pairs(embeddings, labels)
    p = np.asarray(probability(first, second), np.float64)
    d = ((first.astype(np.float64) - second) ** 2).sum(axis=1)
    by_head, by_distance = pair_metrics(1 - p[same], 1 - p[~same]), pair_metrics(d[same], d[~same])
    return {**by_head, **{f"distance_{k}": by_distance[k] for k in ("auc", "eer", "tar_at_far_1e-2")}}


def siamese_recipe(encoder: Path | None, tiny: bool) -> Recipe:
    """The course's verification as binary classification: y_hat = sigmoid(w . |f(x1) - f(x2)| + b) on the frozen
    encoder f's embeddings (the head alone is trained: the encoder, an .onnx file or a facenet checkpoint, stays as
    deployed). Each step: PAIRS genuine and PAIRS impostor pairs of the training identities' views, binary
    cross-entropy. Dev: ROC AUC of the probability over every pair of the dev identities' views, beside the squared
    distance's on the same pairs."""
    if encoder is None:
        raise UserError("recipe siamese needs --encoder ENCODER (the face encoder .onnx, or a facenet checkpoint): "
                        "the head learns to compare its embeddings")
    predictor = encoder_predictor(encoder)
    splits = identity_splits()
    n_train, views, steps = (8, 4, 2) if tiny else (len(splits["train"].faces), 20, 50)
    train_pool = embedded_views(predictor, splits["train"].faces[:n_train], views, seed=1)
    dev_pool = embedded_views(predictor, splits["dev"].faces[: 4 if tiny else 20], 4 if tiny else 10, seed=2)
    size = predictor.meta.embedding_size
    is_onnx = Path(encoder).suffix == ".onnx"
    meta = {"task": "verify", "imgsz": list(predictor.meta.preprocess.input_size), "names": [], "resize": "resize",
            "embedding_size": size, "model_name": "siamese-head",
            "encoder_sha256": hashlib.sha256(Path(encoder).read_bytes()).hexdigest() if is_onnx else ""}
    first, second, _ = all_pairs(*dev_pool)
    extra = {"encoder": str(encoder), "samples": np.concatenate([first[:SAMPLES], second[:SAMPLES]]).tolist()}

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        rng = worker_rng()
        for _ in range(steps):
            yield _pairs(rng, train_pool[0], n_train, views)

    def loss(model, batch):
        e1, e2, y = batch
        value = F.binary_cross_entropy(model(e1, e2), y.to(e1.dtype))
        return value, {"bce": value.item()}

    def evaluate(model) -> dict[str, float]:
        train, dev = head_metrics(torch_head(model), *train_pool), head_metrics(torch_head(model), *dev_pool)
        return {"train_error": 1 - train["auc"], "dev_error": 1 - dev["auc"], "auc": dev["auc"], "eer": dev["eer"],
                "tar_at_far_1e-2": dev["tar_at_far_1e-2"], "distance_auc": dev["distance_auc"],
                "distance_tar_at_far_1e-2": dev["distance_tar_at_far_1e-2"]}

    return Recipe("siamese", "siamese-head", {"embedding_size": size}, meta, batches, loss, evaluate, "auc", 0.0,
                  "a person tells these faces apart almost always (AUC about 1.0)",
                  epochs=1 if tiny else RECIPE_EPOCHS["siamese"],
                  learning_rate=3e-2, eval_every=5, extra=extra)


def _pairs(rng: np.random.Generator, pool: np.ndarray, identities: int, views: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PAIRS genuine pairs (two distinct views of one identity) and PAIRS impostor pairs (views of two identities)
    from pool (identities * views, D), identity-major. Returns e1, e2 (2 * PAIRS, D) and y (2 * PAIRS,) 1 / 0."""
    who = rng.integers(identities, size=PAIRS)
    v1 = rng.integers(views, size=PAIRS)
    v2 = (v1 + rng.integers(1, views, size=PAIRS)) % views  # another view of the same identity
    a = rng.integers(identities, size=PAIRS)
    b = (a + rng.integers(1, identities, size=PAIRS)) % identities  # another identity
    first = np.concatenate([who * views + v1, a * views + rng.integers(views, size=PAIRS)])
    second = np.concatenate([who * views + v2, b * views + rng.integers(views, size=PAIRS)])
    y = np.concatenate([np.ones(PAIRS), np.zeros(PAIRS)])
    return torch.from_numpy(pool[first]), torch.from_numpy(pool[second]), torch.from_numpy(y)
