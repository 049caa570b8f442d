"""scikit-learn's digits (8x8, 1,797 images) with a fixed stratified 70/15/15 train/dev/test split."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SPLIT_SEED = 0
CLASS_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DigitSplit:
    """x: (N, 64) float32 in [0, 1] (flat 8x8), images: (N, 32, 32) uint8 (for LeNet-5), y: (N,) int64."""

    x: np.ndarray
    images: np.ndarray
    y: np.ndarray


def load_digits_splits() -> dict[str, DigitSplit]:
    """The fixed split: stratified by digit, seed 0; 1,257 train, 270 dev, 270 test images.

    The 8x8 images (16 gray levels) are scaled to [0, 1]; for LeNet-5 they are resized to 32x32 (bilinear) as
    uint8 frames, so they go through the runtime's preprocessing like camera frames.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    idx = np.arange(len(y))
    train, rest = train_test_split(idx, test_size=0.3, stratify=y, random_state=SPLIT_SEED)
    dev, test = train_test_split(rest, test_size=0.5, stratify=y[rest], random_state=SPLIT_SEED)
    images = np.stack([cv2.resize((img * 255).astype(np.uint8), (32, 32), interpolation=cv2.INTER_LINEAR)
                       for img in x.reshape(-1, 8, 8)])
    return {name: DigitSplit(x[i], images[i], y[i]) for name, i in (("train", train), ("dev", dev), ("test", test))}
