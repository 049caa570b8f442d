"""runtime.faces: square crops around boxes against a brute-force per-pixel reference, border replication, errors."""

import math

import cv2
import numpy as np
import pytest

from edgepipe.runtime.faces import face_crop, face_crops

SEEDS = range(8)


def noise(seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A uniform-noise BGR frame: every pixel is distinct from its neighbors, so any misplaced pixel shows."""
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def reference_square(frame: np.ndarray, box, margin: float) -> np.ndarray:
    """Reference: the square crop by plain loops, each pixel read at its index clamped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    n = max(1, math.floor(side + 0.5))
    left, top = math.floor((x1 + x2) / 2 - side / 2 + 0.5), math.floor((y1 + y2) / 2 - side / 2 + 0.5)
    h, w = frame.shape[:2]
    square = np.zeros((n, n, 3), np.uint8)
    for i in range(n):
        for j in range(n):
            square[i, j] = frame[min(max(top + i, 0), h - 1), min(max(left + j, 0), w - 1)]
    return square


def reference_crop(frame: np.ndarray, box, size: tuple[int, int], margin: float) -> np.ndarray:
    """Reference: reference_square resized by OpenCV, INTER_AREA when it shrinks, INTER_LINEAR otherwise."""
    square = reference_square(frame, box, margin)
    n = square.shape[0]
    interp = cv2.INTER_AREA if n > size[0] or n > size[1] else cv2.INTER_LINEAR
    return cv2.resize(square, (size[1], size[0]), interpolation=interp)


def random_box(rng: np.random.Generator, frame_size: tuple[int, int]) -> np.ndarray:
    """A random float box overlapping the frame, often reaching past its edges."""
    h, w = frame_size
    bw, bh = rng.uniform(2, 60, 2)
    cx, cy = rng.uniform(-0.4 * bw, w + 0.4 * bw), rng.uniform(-0.4 * bh, h + 0.4 * bh)
    return np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])


@pytest.mark.parametrize("seed", SEEDS)
def test_face_crop_matches_brute_force_on_random_boxes(seed):
    rng = np.random.default_rng(100 + seed)
    frame = noise(seed)
    outside = 0
    for _ in range(12):
        box = random_box(rng, frame.shape[:2])
        margin = float(rng.choice([0.0, 0.2, rng.uniform(0, 0.6)]))
        size = [(16, 16), (24, 20), (64, 64), (96, 96)][int(rng.integers(4))]  # shrinking and growing
        got = face_crop(frame, box, size, margin)
        assert got.shape == (*size, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, reference_crop(frame, box, size, margin), err_msg=f"box {box.tolist()}")
        side = max(box[2] - box[0], box[3] - box[1]) * (1 + margin)
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        outside += cx - side / 2 < -0.5 or cy - side / 2 < -0.5 or cx + side / 2 > 64.5 or cy + side / 2 > 48.5
    assert outside >= 1  # the random boxes did reach past the frame


@pytest.mark.parametrize("seed", SEEDS)
def test_face_crop_at_the_square_size_is_the_exact_pixels(seed):
    # Size equal to the square's side: no resampling, so the crop is exactly the (padded) pixels.
    rng = np.random.default_rng(200 + seed)
    frame = noise(seed)
    for _ in range(12):
        box = random_box(rng, frame.shape[:2])
        square = reference_square(frame, box, 0.3)
        n = square.shape[0]
        np.testing.assert_array_equal(face_crop(frame, box, (n, n), 0.3), square)


def test_face_crop_inside_the_frame_is_a_plain_slice():
    frame = noise(1, (60, 80))
    # A 20 x 10 box centered at (40, 30): margin 0.5 makes a 30 px square from x 25, y 15.
    got = face_crop(frame, np.array([30.0, 25.0, 50.0, 35.0]), (30, 30), 0.5)
    np.testing.assert_array_equal(got, frame[15:45, 25:55])


def test_face_crop_past_the_corner_replicates_the_border():
    frame = noise(2, (40, 50))
    # Box [-4, -6, 6, 4] with margin 0: a 10 px square from x -4, y -6.
    got = face_crop(frame, np.array([-4.0, -6.0, 6.0, 4.0]), (10, 10), 0.0)
    np.testing.assert_array_equal(got[6:, 4:], frame[:4, :6])  # the part in view
    np.testing.assert_array_equal(got[:6, 4:], np.repeat(frame[:1, :6], 6, axis=0))  # above: the top row
    np.testing.assert_array_equal(got[6:, :4], np.repeat(frame[:4, :1], 4, axis=1))  # left: the left column
    assert (got[:6, :4] == frame[0, 0]).all()  # the corner: the corner pixel


def test_face_crop_resize_interpolation_follows_direction():
    frame = noise(3, (64, 64))
    box = np.array([8.0, 8.0, 40.0, 40.0])  # a 32 px square with margin 0
    square = frame[8:40, 8:40]
    np.testing.assert_array_equal(face_crop(frame, box, (12, 12), 0.0),
                                  cv2.resize(square, (12, 12), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(face_crop(frame, box, (48, 48), 0.0),
                                  cv2.resize(square, (48, 48), interpolation=cv2.INTER_LINEAR))
    # At a non-integer ratio INTER_AREA and INTER_LINEAR differ on noise: the check above can tell them apart.
    assert not np.array_equal(cv2.resize(square, (12, 12), interpolation=cv2.INTER_AREA),
                              cv2.resize(square, (12, 12), interpolation=cv2.INTER_LINEAR))


def test_face_crop_does_not_modify_the_frame():
    frame = noise(4)
    before = frame.copy()
    crop = face_crop(frame, np.array([0.0, 0.0, 20.0, 20.0]), (20, 20), 0.0)
    crop[:] = 0
    np.testing.assert_array_equal(frame, before)


def test_face_crops_is_face_crop_per_box():
    frame = noise(5)
    boxes = np.array([[1.0, 2.0, 20.0, 30.0], [40.5, 10.25, 70.0, 47.0], [-5.0, 30.0, 8.0, 52.0]], np.float32)
    got = face_crops(frame, boxes, (32, 32), 0.25)
    assert len(got) == 3
    for crop, box in zip(got, boxes, strict=True):
        np.testing.assert_array_equal(crop, face_crop(frame, box, (32, 32), 0.25))
    assert face_crops(frame, np.zeros((0, 4), np.float32), (32, 32)) == []  # no faces: no crops


@pytest.mark.parametrize(
    ("frame", "box", "size", "margin", "match"),
    [
        (noise(0), [np.nan, 0, 10, 10], (8, 8), 0.2, r"box \[nan.*non-finite"),  # NaN coordinate
        (noise(0), [0, 0, np.inf, 10], (8, 8), 0.2, "non-finite"),  # infinite coordinate
        (noise(0), [10, 0, 10, 10], (8, 8), 0.2, r"box \[10.0, 0.0, 10.0, 10.0\].*x1 < x2"),  # zero width
        (noise(0), [0, 12, 10, 5], (8, 8), 0.2, "y1 < y2"),  # y2 < y1
        (noise(0), [70, 0, 90, 10], (8, 8), 0.2, "outside the 64x48 frame"),  # right of the frame
        (noise(0), [-20, -20, 0, 0], (8, 8), 0.2, "outside"),  # touches the corner only
        (noise(0), [0, 0, 10], (8, 8), 0.2, r"shape \(3,\)"),  # not four numbers
        (noise(0), [0, 0, 10, 10], (0, 8), 0.2, "size must be"),  # empty output
        (noise(0), [0, 0, 10, 10], (8,), 0.2, "size must be"),  # one number
        (noise(0), [0, 0, 10, 10], (8, 8), -0.1, "margin must be"),  # negative margin
        (noise(0)[..., 0], [0, 0, 10, 10], (8, 8), 0.2, r"\(H, W, 3\) uint8"),  # gray frame
        (noise(0).astype(np.float32), [0, 0, 10, 10], (8, 8), 0.2, "uint8"),  # float frame
    ],
)
def test_face_crop_errors(frame, box, size, margin, match):
    with pytest.raises(ValueError, match=match):
        face_crop(frame, np.array(box, np.float64), size, margin)


def test_face_crops_rejects_a_flat_box_array():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        face_crops(noise(0), np.zeros(4), (8, 8))
