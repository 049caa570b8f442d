"""Threshold calibration from pair distances (ROC, AUC, EER, threshold at a FAR) against scikit-learn's ROC and
counting by brute force."""

import numpy as np
import pytest
from sklearn.metrics import auc as sk_auc
from sklearn.metrics import roc_curve as sk_roc_curve

from edgepipe.postprocess.calibration import calibrate, equal_error_rate, roc_auc, roc_curve, threshold_at_far


def count_rates(genuine, impostor, t):
    """(FAR, TAR) at threshold t by counting accepted pairs (distance <= t)."""
    far = sum(1 for d in impostor if d <= t) / len(impostor)
    tar = sum(1 for d in genuine if d <= t) / len(genuine)
    return far, tar


def pair_distances(seed, n_gen=200, n_imp=500, decimals=None):
    rng = np.random.default_rng(seed)
    gen, imp = rng.normal(0.6, 0.3, n_gen), rng.normal(1.4, 0.3, n_imp)
    return (gen.round(decimals), imp.round(decimals)) if decimals is not None else (gen, imp)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("decimals", [None, 1])  # rounding to 0.1 makes many genuine-impostor ties
def test_roc_matches_sklearn_and_counting(seed, decimals):
    gen, imp = pair_distances(seed, decimals=decimals)
    roc = roc_curve(gen, imp)
    y = np.r_[np.ones(len(gen)), np.zeros(len(imp))]
    far, tar, thr = sk_roc_curve(y, -np.r_[gen, imp], drop_intermediate=False)  # smaller distance = more positive
    np.testing.assert_allclose(roc.far, far, atol=1e-15)
    np.testing.assert_allclose(roc.tar, tar, atol=1e-15)
    np.testing.assert_array_equal(roc.thresholds[1:], -thr[1:])  # sklearn's first threshold is inf: accepts none
    assert roc.thresholds[0] < min(gen.min(), imp.min())
    assert roc_auc(roc) == pytest.approx(sk_auc(far, tar), abs=1e-12)
    np.testing.assert_array_equal(roc.thresholds[1:], sorted(set(gen) | set(imp)))  # every distinct distance
    for t, f, r in zip(roc.thresholds, roc.far, roc.tar, strict=True):
        assert (f, r) == pytest.approx(count_rates(gen, imp, t))
    assert (np.diff(roc.thresholds) > 0).all() and (np.diff(roc.far) >= 0).all() and (np.diff(roc.tar) >= 0).all()
    assert (roc.far[0], roc.tar[0], roc.far[-1], roc.tar[-1]) == (0, 0, 1, 1)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("target", [0.0, 1e-3, 0.01, 0.1, 1.0])
def test_threshold_at_far_and_eer_against_brute_force(seed, target):
    gen, imp = pair_distances(seed, n_gen=60, n_imp=150, decimals=2 if seed % 2 else None)
    cal = threshold_at_far(gen, imp, target)
    candidates = sorted(set(gen) | set(imp))
    allowed = [t for t in candidates if count_rates(gen, imp, t)[0] <= target]
    if allowed:  # the largest distinct distance whose FAR is within the target
        assert cal.threshold == max(allowed)
    else:  # even the smallest distance accepts too many impostors: accept nothing
        assert cal.threshold < candidates[0]
    assert (cal.far, cal.tar) == pytest.approx(count_rates(gen, imp, cal.threshold))
    assert cal.far <= target and cal.target_far == target
    # EER: the first threshold where |FAR - FRR| is smallest, the mean of the two there
    gaps = [abs(count_rates(gen, imp, t)[0] - (1 - count_rates(gen, imp, t)[1])) for t in candidates]
    best = candidates[int(np.argmin(gaps))]
    far_b, tar_b = count_rates(gen, imp, best)
    assert (cal.eer, cal.eer_threshold) == pytest.approx(((far_b + 1 - tar_b) / 2, best))
    assert equal_error_rate(gen, imp) == (cal.eer, cal.eer_threshold)
    assert cal.auc == roc_auc(roc_curve(gen, imp))


@pytest.mark.parametrize(
    ("genuine", "impostor", "target", "threshold", "far", "tar", "eer", "auc"),
    [
        ([0.1, 0.2], [0.9, 1.0], 0.0, 0.2, 0.0, 1.0, 0.0, 1.0),  # perfect separation
        ([0.9, 1.0], [0.1, 0.2], 0.0, np.nextafter(0.1, 0), 0.0, 0.0, 1.0, 0.0),  # inverted: FAR = FRR = 1 at 0.2
        ([0.5, 0.5], [0.5, 0.5], 0.5, np.nextafter(0.5, 0), 0.0, 0.0, 0.5, 0.5),  # all tied: chance
        ([0.5, 0.5], [0.5, 0.5], 1.0, 0.5, 1.0, 1.0, 0.5, 0.5),  # all tied, any FAR allowed
        # FAR exactly at the target; |FAR - FRR| = 0.25 at 0.2 and at 0.3: the first, mean (0.25 + 0.5) / 2
        ([0.1, 0.3], [0.2, 0.4, 0.6, 0.8], 0.25, 0.3, 0.25, 1.0, 0.375, 0.875),
        ([0.1, 0.2], [0.2, 0.9], 0.0, 0.1, 0.0, 0.5, 0.25, 0.875),  # genuine-impostor tie at 0.2: half credit
        ([0.0], [0.0], 0.0, np.nextafter(0.0, -1), 0.0, 0.0, 0.5, 0.5),  # distance 0 tied: threshold just below 0
    ],
)
def test_calibration_hand_made(genuine, impostor, target, threshold, far, tar, eer, auc):
    cal = threshold_at_far(genuine, impostor, target)
    assert (cal.threshold, cal.far, cal.tar) == (threshold, far, tar)
    assert (cal.eer, cal.auc) == pytest.approx((eer, auc))


def test_calibrate_defaults_to_far_1e_3():
    gen, imp = pair_distances(0, n_gen=500, n_imp=5000)
    assert calibrate(gen, imp) == threshold_at_far(gen, imp, 1e-3)
    assert calibrate(gen, imp, 0.05) == threshold_at_far(gen, imp, 0.05)



@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: roc_curve([], [1.0]), r"genuine must not be empty: calibration needs both"),  # nothing to calibrate
        (lambda: roc_curve([0.1], []), r"impostor must not be empty"),
        (lambda: roc_curve([0.1], [np.inf]), r"impostor must be finite, but got NaN or inf"),
        (lambda: roc_curve([[0.1]], [1.0]), r"genuine must be a 1-D array of pair distances, but got shape \(1, 1\)"),
        (lambda: roc_curve(["x"], [1.0]), r"genuine must be a float or integer array"),
        (lambda: equal_error_rate([0.1], []), r"impostor must not be empty"),
        (lambda: threshold_at_far([0.1], [1.0], 1.5), r"target_far must be in \[0, 1\], but got 1.5"),
        (lambda: calibrate([], [1.0]), r"genuine must not be empty"),
        (lambda: calibrate([0.1], [1.0], -0.1), r"target_far must be in \[0, 1\]"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
