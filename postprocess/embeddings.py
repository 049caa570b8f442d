"""Embedding comparison for Siamese / FaceNet encoders: distances, 1:1 verify, 1:K identify, threshold calibration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from postprocess._check import check_unit

METRICS = ("squared_l2", "cosine")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verification:
    """1:1 verification: match when distance <= threshold."""

    distance: float
    match: bool
    threshold: float
    metric: str


@dataclass(frozen=True)
class Identification:
    """1:K identification of one query: labels and distances of the k nearest gallery rows, ascending.

    label: the nearest label, or "unknown" when its distance is above the threshold or the gallery is empty.
    """

    label: str
    distance: float
    labels: tuple[str, ...]
    distances: tuple[float, ...]


@dataclass(frozen=True)
class Roc:
    """ROC of a distance threshold (accept when distance <= threshold), thresholds ascending.

    far: fraction of impostor pairs accepted; tar: fraction of genuine pairs accepted; both non-decreasing.
    """

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """A threshold chosen for a target false-accept rate, with what it achieves and the ROC's summary."""

    threshold: float
    far: float
    tar: float
    target_far: float
    eer: float
    eer_threshold: float
    auc: float


def _matrix(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must be a numeric (N, D) or (D,) array, but got {arr.dtype} {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, but got NaN or inf")
    return arr


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, but got {metric!r}")


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """x / ||x|| along axis (zero vectors stay zero). x: (..., D) float. Returns float32, a new array."""
    arr = np.asarray(x, dtype=np.float32)
    return arr / np.maximum(np.linalg.norm(arr, axis=axis, keepdims=True), eps)


def distance_matrix(queries: np.ndarray, gallery: np.ndarray, metric: str = "squared_l2") -> np.ndarray:
    """Distances between every query and every gallery row.

    queries: (Q, D) or (D,) float. gallery: (G, D) float. metric: "squared_l2" (the course's
    d = ||f(x1) - f(x2)||^2) or "cosine" (1 - cos). Returns: (Q, G) float32, >= 0.
    """
    _check_metric(metric)
    q, g = _matrix(queries, "queries"), _matrix(gallery, "gallery")
    if q.shape[1] != g.shape[1] and len(g):
        raise ValueError(f"gallery must have embedding size {q.shape[1]} like the queries, but got {g.shape[1]}")
    if metric == "cosine":
        return np.maximum(1.0 - l2_normalize(q) @ l2_normalize(g).T, 0.0)
    # ||q - g||^2 = ||q||^2 + ||g||^2 - 2 q.g: one matrix product instead of a (Q, G, D) difference.
    d = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    return np.maximum(d, 0.0)


def distance(a: np.ndarray, b: np.ndarray, metric: str = "squared_l2") -> float:
    """Distance between two embeddings a: (D,), b: (D,)."""
    return float(distance_matrix(np.asarray(a)[None] if np.ndim(a) == 1 else a, b, metric)[0, 0])


def verify(a: np.ndarray, b: np.ndarray, threshold: float, metric: str = "squared_l2") -> Verification:
    """1:1 face verification: is b the same person as a? a, b: (D,) embeddings."""
    d = distance(a, b, metric)
    return Verification(d, bool(d <= threshold), float(threshold), metric)


def identify(
    queries: np.ndarray,
    gallery: np.ndarray,
    labels: Sequence[str],
    threshold: float,
    k: int = 1,
    metric: str = "squared_l2",
) -> list[Identification]:
    """1:K recognition: the k nearest gallery rows for each query.

    queries: (Q, D) or (D,). gallery: (G, D). labels: G names, one per gallery row (a person may own several).
    Returns: one Identification per query ("unknown" above the threshold; an empty gallery gives "unknown" with
    an infinite distance). Empty queries give [].
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, but got {k}")
    q = _matrix(queries, "queries")
    g = np.zeros((0, q.shape[1]), np.float32) if np.size(gallery) == 0 else _matrix(gallery, "gallery")
    if len(labels) != len(g):
        raise ValueError(f"labels must have one entry per gallery row ({len(g)}), but got {len(labels)}")
    if len(q) == 0:
        return []
    if len(g) == 0:
        return [Identification(UNKNOWN, float("inf"), (), ()) for _ in range(len(q))]
    d = distance_matrix(q, g, metric)  # (Q, G)
    k = min(k, len(g))
    top = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(g) else np.tile(np.arange(len(g)), (len(q), 1))
    results = []
    for row, cand in zip(d, top, strict=True):
        cand = cand[np.lexsort((cand, row[cand]))]  # ascending distance, ties by gallery order
        best = float(row[cand[0]])
        label = labels[cand[0]] if best <= threshold else UNKNOWN
        results.append(
            Identification(label, best, tuple(labels[i] for i in cand), tuple(float(row[i]) for i in cand))
        )
    return results


def _distances(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} distances must not be empty: calibration needs genuine and impostor pairs")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} distances must be finite, but got NaN or inf")
    return arr


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> Roc:
    """ROC over every distinct distance as a threshold (accept when distance <= threshold).

    genuine: (P,) distances of same-person pairs. impostor: (N,) distances of different-person pairs.
    Returns: Roc starting at (far 0, tar 0) below the smallest distance.
    """
    gen, imp = _distances(genuine, "genuine"), _distances(impostor, "impostor")
    thresholds = np.unique(np.concatenate([gen, imp]))
    tar = np.searchsorted(np.sort(gen), thresholds, side="right") / len(gen)
    far = np.searchsorted(np.sort(imp), thresholds, side="right") / len(imp)
    below = np.nextafter(thresholds[0], -np.inf)
    return Roc(np.concatenate([[below], thresholds]), np.concatenate([[0.0], far]), np.concatenate([[0.0], tar]))


def roc_auc(roc: Roc) -> float:
    """Area under the ROC (TAR against FAR), trapezoidal: 1.0 when every genuine pair is closer than any impostor."""
    return float(np.trapezoid(roc.tar, roc.far))


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """The error rate where FAR equals FRR (1 - TAR), and the threshold at which it is reached.

    Returns: (eer, threshold); the threshold where |FAR - FRR| is smallest, eer their mean there.
    """
    roc = roc_curve(genuine, impostor)
    frr = 1.0 - roc.tar
    i = int(np.argmin(np.abs(roc.far - frr)))
    return float((roc.far[i] + frr[i]) / 2), float(roc.thresholds[i])


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray, target_far: float = 1e-3) -> Calibration:
    """The largest threshold whose false-accept rate is <= target_far, and the TAR it achieves."""
    target = check_unit(target_far, "target_far")
    roc = roc_curve(genuine, impostor)
    i = int(np.flatnonzero(roc.far <= target)[-1])
    eer, eer_threshold = equal_error_rate(genuine, impostor)
    return Calibration(
        float(roc.thresholds[i]), float(roc.far[i]), float(roc.tar[i]), target, eer, eer_threshold, roc_auc(roc)
    )

