"""Keypoint evaluation: the mean pixel error of matched objects and the OKS-based keypoint AP (pycocotools) against
OKS computed by hand; unlabeled slots never count."""

import math

import numpy as np
import pytest

from edgepipe.export.metrics import keypoint_metrics
from edgepipe.postprocess.detections import Detections

SIGMA = 0.05
TRUTH = np.array([[10, 10, 2], [30, 10, 2], [30, 30, 1], [0, 0, 0]], np.float32)  # the 4th slot is not labeled


def coco(points: np.ndarray) -> dict:
    """One 64 x 64 image holding one 20 x 20 object (area 400) with the given landmarks (K, 3)."""
    return {"images": [{"id": 1, "file_name": "a.png", "height": 64, "width": 64}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                             "iscrowd": 0, "keypoints": points.reshape(-1).tolist(),
                             "num_keypoints": int((points[:, 2] > 0).sum())}],
            "categories": [{"id": 1, "name": "square", "keypoints": ["a", "b", "c", "d"], "skeleton": []}]}


def detection(shift: float, fourth: tuple[float, float]) -> Detections:
    points = TRUTH[:, :2].copy()
    points[:3, 0] += shift
    points[3] = fourth
    return Detections(np.array([[10, 10, 30, 30]], np.float32), np.array([0.9], np.float32), np.array([0]),
                      keypoints=points[None])


@pytest.mark.parametrize("shift", [0.0, 1.0, 1.5, 2.5, 4.0])
def test_error_and_oks_ap_by_hand(shift):
    result = keypoint_metrics(coco(TRUTH), [detection(shift, (60.0, 2.0))], SIGMA)
    assert result["keypoints_compared"] == 3  # the labeled ones, hidden included, not the 4th slot
    assert result["keypoint_error_px"] == pytest.approx(shift, abs=1e-5)
    oks = math.exp(-(shift**2) / (2 * 400 * (2 * SIGMA) ** 2))  # COCO: exp(-d^2 / (2 s^2 k^2)), k = 2 sigma
    thresholds = np.linspace(0.5, 0.95, 10)
    assert result["keypoint_ap"] == pytest.approx((thresholds <= oks + 1e-9).mean(), abs=1e-6)
    assert result["keypoint_ap50"] == pytest.approx(1.0 if oks >= 0.5 else 0.0)


def test_no_match_no_error_and_no_detections_zero_ap():
    far = Detections(np.array([[40, 40, 60, 60]], np.float32), np.array([0.9], np.float32), np.array([0]),
                     keypoints=np.zeros((1, 4, 2), np.float32))  # IoU 0 with the object: no pixel error to report
    result = keypoint_metrics(coco(TRUTH), [far], SIGMA)
    assert result["keypoints_compared"] == 0 and "keypoint_error_px" not in result
    assert result["keypoint_ap"] == 0.0
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                       keypoints=np.zeros((0, 4, 2), np.float32))
    assert keypoint_metrics(coco(TRUTH), [empty], SIGMA)["keypoint_ap"] == 0.0
