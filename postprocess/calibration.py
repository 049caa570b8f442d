"""Threshold calibration from pair distances: the ROC, its area, the equal error rate, the threshold at a FAR."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess._check import check_unit
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True, eq=False)
class Roc:
    """ROC of a distance threshold (accept a pair when distance <= threshold).

    thresholds: (T,) float64 ascending: just below the smallest distance, then every distinct distance.
    far: (T,) fraction of impostor pairs accepted; tar: (T,) fraction of genuine pairs accepted; both
    non-decreasing, from 0 at the first threshold to 1 at the last.
    """

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray


@dataclass(frozen=True)
class Calibration:
    """A threshold chosen for a target false-accept rate, what it achieves, and the ROC's summary.

    threshold: the largest distinct distance whose FAR <= target_far; far, tar: the rates at that threshold.
    eer, eer_threshold: equal error rate and where it is reached; auc: area under the ROC.
    """

    threshold: float
    far: float
    tar: float
    target_far: float
    eer: float
    eer_threshold: float
    auc: float


def _distances(x: np.ndarray, name: str) -> np.ndarray:
    """Pair distances for calibration: (N,) float or integer, N >= 1, finite. Returns (N,) float64."""
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise UserError(f"{name} must be a 1-D array of pair distances, but got shape {arr.shape}")
    if arr.size == 0:
        raise UserError(f"{name} must not be empty: calibration needs both genuine and impostor pairs")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise UserError(f"{name} must be a float or integer array, but got dtype {arr.dtype}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise UserError(f"{name} must be finite, but got NaN or inf")
    return out


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> Roc:
    """ROC over every distinct distance as a threshold (accept a pair when distance <= threshold).

    genuine: (P,) distances of same-person pairs, impostor: (N,) distances of different-person pairs, both
    non-empty and finite. Returns: Roc with T = (distinct distances) + 1 points, starting at far = tar = 0.
    """
    gen, imp = _distances(genuine, "genuine"), _distances(impostor, "impostor")
    thresholds = np.unique(np.concatenate([gen, imp]))
    tar = np.searchsorted(np.sort(gen), thresholds, side="right") / len(gen)
    far = np.searchsorted(np.sort(imp), thresholds, side="right") / len(imp)
    below = np.nextafter(thresholds[0], -np.inf)  # accepts nothing
    return Roc(np.concatenate([[below], thresholds]), np.concatenate([[0.0], far]), np.concatenate([[0.0], tar]))


def roc_auc(roc: Roc) -> float:
    """Area under the ROC (TAR against FAR), trapezoidal: 1.0 when every genuine pair is closer than any impostor,
    0.5 for chance; a tie between a genuine and an impostor distance counts one half."""
    return float(np.sum(np.diff(roc.far) * (roc.tar[1:] + roc.tar[:-1])) / 2.0)


def _eer(roc: Roc) -> tuple[float, float]:
    """(eer, threshold) at the first ROC point where |FAR - FRR| is smallest; eer is the mean of the two there."""
    frr = 1.0 - roc.tar
    i = int(np.argmin(np.abs(roc.far - frr)))
    return float((roc.far[i] + frr[i]) / 2.0), float(roc.thresholds[i])


def equal_error_rate(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """The error rate where FAR equals FRR (1 - TAR), and the threshold reaching it.

    genuine: (P,), impostor: (N,) pair distances, non-empty. Returns: (eer, threshold), taken at the smallest
    threshold of roc_curve's where |FAR - FRR| is smallest; eer = (FAR + FRR) / 2 there.
    """
    return _eer(roc_curve(genuine, impostor))


def threshold_at_far(genuine: np.ndarray, impostor: np.ndarray, target_far: float) -> Calibration:
    """The largest threshold whose false-accept rate is <= target_far, with the TAR it achieves.

    genuine: (P,), impostor: (N,) pair distances, non-empty. target_far: in [0, 1]. The threshold is one of
    roc_curve's (a distinct distance, or just below the smallest when even that accepts too many impostors).
    """
    target = check_unit(target_far, "target_far")
    roc = roc_curve(genuine, impostor)
    i = int(np.flatnonzero(roc.far <= target)[-1])  # far is non-decreasing and far[0] = 0
    eer, eer_threshold = _eer(roc)
    return Calibration(
        float(roc.thresholds[i]), float(roc.far[i]), float(roc.tar[i]), target, eer, eer_threshold, roc_auc(roc)
    )


def calibrate(genuine: np.ndarray, impostor: np.ndarray, target_far: float = 1e-3) -> Calibration:
    """The kiosk's threshold from held-out pair distances: threshold_at_far at a default FAR of 1 in 1,000.

    genuine: (P,) same-person distances, impostor: (N,) different-person distances, both non-empty.
    """
    return threshold_at_far(genuine, impostor, target_far)
