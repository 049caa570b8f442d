"""Textured backgrounds from scikit-image's bundled sample images (no download), as BGR uint8."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from edgepipe.postprocess.errors import UserError

SAMPLES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "horse", "clock",
           "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "text")


@lru_cache(maxsize=1)
def sample_images() -> tuple[np.ndarray, ...]:
    """scikit-image's sample images as (H, W, 3) BGR uint8, read-only (gray ones replicated to three channels)."""
    import skimage.data

    images = []
    for name in SAMPLES:
        img = np.asarray(getattr(skimage.data, name)())
        if img.dtype != np.uint8:  # horse is bool
            img = (img * 255 if img.max() <= 1 else img).astype(np.uint8)
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else cv2.cvtColor(img[..., :3], cv2.COLOR_RGB2BGR)
        img.flags.writeable = False
        images.append(img)
    return tuple(images)


def random_background(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """A random crop (a third to all of each side) of a random sample image, resized to size, mirrored with p = 0.5,
    with a per-channel gain in [0.6, 1.3] (color jitter).

    size: (height, width). Returns: (height, width, 3) BGR uint8, a new array.
    """
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"size must be (height, width) with both >= 1, but got {size!r}")
    src = sample_images()[rng.integers(len(SAMPLES))]
    h, w = src.shape[:2]
    ch, cw = int(rng.integers(h // 3, h + 1)), int(rng.integers(w // 3, w + 1))
    y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = cv2.resize(src[y : y + ch, x : x + cw], (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    gain = rng.uniform(0.6, 1.3, 3)
    lut = np.clip(np.arange(256)[:, None] * gain, 0, 255).astype(np.uint8)  # (256, 3): value -> value * gain
    return cv2.LUT(np.ascontiguousarray(crop), lut[None])
