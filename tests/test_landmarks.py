"""The generated shapes' landmarks against their pixels: extreme points and corners of the drawn masks, hidden ones
under later shapes, mirrored and cropped with the image, and stored as COCO keypoints."""

import cv2
import numpy as np
import pytest

from edgepipe.export.augment import augment_pose
from edgepipe.export.data.detection import (
    DatasetConfig,
    draw_shapes,
    load_split,
    make_detection_dataset,
    split_scenes,
)
from edgepipe.export.data.keypoints import KEYPOINT_NAMES, keypoints_of, mirror_keypoints
from tests.pixels import SEEDS, changed, noise


def one_object(seed: int):
    """One shape on noise: its drawn pixels (H, W) bool, class id and landmarks (4, 3)."""
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=1)
    return changed(scene.image, bg), int(scene.class_ids[0]), scene.keypoints[0]


def extremes(mask: np.ndarray) -> dict[str, float]:
    """Loop reference: the drawn pixels' extent in pixel-edge coordinates (left, top, right, bottom)."""
    ys, xs = np.nonzero(mask)
    return {"left": xs.min(), "top": ys.min(), "right": xs.max() + 1, "bottom": ys.max() + 1}


def row_span(mask: np.ndarray, y: int) -> tuple[float, float]:
    xs = np.nonzero(mask[y])[0]
    return xs.min(), xs.max() + 1


@pytest.mark.parametrize("seed", SEEDS)
def test_landmarks_are_the_drawn_shapes_extremes_and_corners(seed):
    mask, c, kp = one_object(seed)
    e = extremes(mask)
    labeled = kp[kp[:, 2] > 0, :2]
    assert len(labeled) == len(KEYPOINT_NAMES[c]) and (kp[:, 2] > 0).sum() == (kp[:, 2] == 2).sum()  # all visible
    if c == 1:  # square: the corners of its pixels, clockwise from the top left
        expected = [(e["left"], e["top"]), (e["right"], e["top"]), (e["right"], e["bottom"]), (e["left"], e["bottom"])]
        np.testing.assert_allclose(labeled, expected)
    elif c == 0:  # circle: the middle of its extent on each side, on the drawn edge
        (top, bottom, left, right) = labeled
        assert (top[1], bottom[1], left[0], right[0]) == (e["top"], e["bottom"], e["left"], e["right"])
        for point, row in ((top, e["top"]), (bottom, e["bottom"] - 1)):
            lo, hi = row_span(mask, int(row))
            assert lo <= point[0] <= hi  # on the topmost (bottommost) drawn row
        assert left[1] == right[1] == pytest.approx((e["top"] + e["bottom"]) / 2)
    else:  # triangle: the apex on the top row, the base corners at the bottom
        apex, base_left, base_right = labeled
        lo, hi = row_span(mask, int(e["top"]))
        assert apex[1] == e["top"] and lo <= apex[0] <= hi
        np.testing.assert_allclose([base_left, base_right], [(e["left"], e["bottom"]), (e["right"], e["bottom"])])
        assert kp[3, 2] == 0  # the fourth slot is not labeled


def test_hidden_landmarks_lie_under_a_later_shape():
    hidden = 0
    for seed in SEEDS:
        scene = draw_shapes(np.random.default_rng(seed), noise(seed), max_objects=6)
        for i, points in enumerate(scene.keypoints):
            for x, y, _ in points[points[:, 2] == 1]:
                later = scene.boxes[i + 1 :]
                assert ((later[:, 0] <= x) & (x <= later[:, 2]) & (later[:, 1] <= y) & (y <= later[:, 3])).any()
                hidden += 1
    assert hidden > 0  # the seeds do overlap some landmarks


@pytest.mark.parametrize("seed", SEEDS)
def test_mirrored_landmarks_keep_their_names(seed):
    mask, c, kp = one_object(seed)
    flipped_mask = mask[:, ::-1]
    flipped = mirror_keypoints(kp[None], np.array([c]), mask.shape[1])[0]
    e = extremes(flipped_mask)
    x = dict(zip(KEYPOINT_NAMES[c], flipped[:, 0], strict=False))
    if c == 0:
        assert (x["left"], x["right"]) == (e["left"], e["right"])  # still the left and the right point
    elif c == 1:
        assert (x["top_left"], x["top_right"]) == (e["left"], e["right"])
    else:
        assert (x["bottom_left"], x["bottom_right"]) == (e["left"], e["right"])
        lo, hi = row_span(flipped_mask, int(e["top"]))
        assert lo <= x["apex"] <= hi


@pytest.mark.parametrize("seed", SEEDS)
def test_augmented_landmarks_follow_the_pixels(seed):
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=1)
    white = np.where(changed(scene.image, bg), 255, 114).astype(np.uint8)
    image = cv2.cvtColor(white, cv2.COLOR_GRAY2BGR)
    out, boxes, _, kp = augment_pose(image, scene.boxes, scene.class_ids, scene.keypoints,
                                           np.random.default_rng(seed))
    if not len(boxes):
        return  # cropped away
    drawn = out[..., 0] > 170  # white after the color shift (gain 0.8..1.2, offset +-20); gray 114 stays below
    h, w = drawn.shape
    for x, y, _ in kp[0][kp[0][:, 2] > 0]:
        assert 0 <= x <= w and 0 <= y <= h
        near = drawn[max(0, int(y) - 2) : int(y) + 2, max(0, int(x) - 2) : int(x) + 2]
        assert near.any()  # a landmark sits on the warped shape (bilinear edges spread by up to the scale)
    gone = (scene.keypoints[0][:, 2] > 0) & (kp[0][:, 2] == 0)
    assert all(not (0 <= px <= w and 0 <= py <= h) for px, py in kp[0][gone, :2])  # dropped: out of the image


def test_coco_files_keep_the_landmarks(tmp_path):
    config = DatasetConfig(n_train=3, n_dev=2, n_test=0, image_size=(96, 128), seed=2)
    root = make_detection_dataset(tmp_path / "shapes", config)
    coco = load_split(root, "train")[3]
    stored = keypoints_of(coco)

    for scene, points in zip(split_scenes(config, "train"), stored, strict=True):
        np.testing.assert_allclose(points, scene.keypoints, atol=0.01)
    ann = coco["annotations"][0]
    assert ann["num_keypoints"] == int((np.array(ann["keypoints"][2::3]) > 0).sum())
    assert [c["keypoints"] for c in coco["categories"]] == [list(n) for n in KEYPOINT_NAMES]
