"""Augmentation keeps boxes on their objects: mirrored, scaled and cropped boxes against the moved pixels."""

import cv2
import numpy as np
import pytest

from edgepipe.export.augment import mirror, scale_crop
from edgepipe.export.data.detection import draw_shapes
from tests.pixels import SEEDS, changed, loop_bbox, noise


def one_object(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A white shape on gray 114 (scale_crop's padding), as a BGR image, its box (1, 4) and class id (1,)."""
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=1)
    gray = np.where(changed(scene.image, bg), 255, 114).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), scene.boxes, scene.class_ids


@pytest.mark.parametrize("seed", SEEDS)
def test_mirrored_box_covers_the_mirrored_object(seed):
    image, boxes, _ = one_object(seed)
    kept_image, kept_boxes = image.copy(), boxes.copy()
    out, moved = mirror(image, boxes)
    assert moved.tolist() == [loop_bbox(out[..., 0] == 255)]
    np.testing.assert_array_equal(image, kept_image)  # the caller's arrays are untouched
    np.testing.assert_array_equal(boxes, kept_boxes)


@pytest.mark.parametrize("seed", SEEDS)
def test_scaled_and_cropped_box_covers_the_moved_object(seed):
    image, boxes, class_ids = one_object(seed)
    out, moved, classes = scale_crop(image, boxes, class_ids, np.random.default_rng(seed))
    assert out.shape == image.shape and len(moved) == len(classes) <= 1
    if len(moved):
        assert classes.tolist() == class_ids.tolist()
        ref = np.array(loop_bbox(out[..., 0] != 114), np.float32)  # every pixel the warped object reaches
        h, w = image.shape[:2]
        x1, y1, x2, y2 = moved[0]
        # Bilinear sampling spreads an edge by up to the scale factor (<= 1.3 px).
        if x1 > 0 and y1 > 0 and x2 < w and y2 < h:  # inside the image: the box stays tight
            np.testing.assert_allclose(moved[0], ref, atol=1.5)
        else:  # cut by the border: the clipped box still covers the object (a cut triangle may be narrower)
            assert (moved[0, :2] <= ref[:2] + 1.5).all() and (moved[0, 2:] >= ref[2:] - 1.5).all()
