"""scikit-learn's digits (8x8, 16 gray levels, 1,797 images) with a fixed stratified 70/15/15 train/dev/test split."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgepipe.postprocess.errors import UserError

SPLIT_SEED = 0
CLASS_NAMES = tuple(str(d) for d in range(10))
IMAGE_SIZE = 32  # LeNet-5's input side


@dataclass(frozen=True)
class DigitSplit:
    """One split of the digits.

    x: (N, 64) float32 in [0, 1], the flat 8x8 image (row-major) for the dense networks.
    images: (N, 32, 32) uint8 gray frames for LeNet-5 (the 8x8 image scaled to 0..255, upsampled bilinearly);
    divide by 255 for [0, 1], as the runtime's preprocessing does. y: (N,) int64 digit. index: (N,) int64 row in
    sklearn.datasets.load_digits().
    """

    x: np.ndarray
    images: np.ndarray
    y: np.ndarray
    index: np.ndarray


def load_digits_splits() -> dict[str, DigitSplit]:
    """The fixed split {"train", "dev", "test"}: 1,257 / 270 / 270 images, stratified by digit, seed 0.

    sklearn's train_test_split with stratify: 30% held out from all 1,797, then halved into dev and test.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    y = data.target.astype(np.int64)
    index = np.arange(len(y))
    train, rest = train_test_split(index, test_size=0.3, stratify=y, random_state=SPLIT_SEED)
    dev, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=SPLIT_SEED)
    x = (data.data / 16.0).astype(np.float32)  # (1797, 64), 16 gray levels 0..16 -> [0, 1]
    images = upsample_digits(data.images)
    return {
        name: DigitSplit(x[rows], images[rows], y[rows], rows)
        for name, rows in (("train", train), ("dev", dev), ("test", test))
    }


def upsample_digits(images: np.ndarray) -> np.ndarray:
    """8x8 digits (levels 0..16) to LeNet-5 frames.

    images: (N, 8, 8) numbers in [0, 16]. Returns: (N, 32, 32) uint8, round(level * 255 / 16) resized with
    cv2.INTER_LINEAR (half-pixel centers, edge pixels replicated: torch's bilinear with align_corners=False).
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (8, 8):
        raise UserError(f"images must have shape (N, 8, 8), but got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 16):
        raise UserError(f"images must hold levels in [0, 16], but got [{arr.min()}, {arr.max()}]")
    gray = np.round(arr * 255 / 16).astype(np.uint8)
    out = np.empty((len(gray), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, img in enumerate(gray):
        out[i] = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
    return out
