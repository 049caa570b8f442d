"""Faces from scikit-image's lfw_subset: one identity per real face crop, its views made by augmentation.

lfw_subset holds 200 gray 25x25 crops: the first 100 are faces of 100 different photos, the last 100 are
non-faces (it was made for a face/non-face classifier). So each face is its own identity, and a person's
"photos" are augmented views of it (pose, scale, lighting, blur, occlusion, mirroring). Identities are split
60 / 20 / 20 (train / dev / test) with a fixed permutation: evaluation uses identities never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from export.data.backgrounds import random_background

SPLIT_SEED = 0
SPLITS = {"train": 60, "dev": 20, "test": 20}


@lru_cache(maxsize=1)
def face_crops() -> np.ndarray:
    """The 100 face crops of lfw_subset: (100, 25, 25) uint8 gray."""
    import skimage.data

    return (skimage.data.lfw_subset()[:100] * 255).round().astype(np.uint8)


@dataclass(frozen=True)
class FaceIdentities:
    """faces: (K, 25, 25) uint8 gray crops, one per identity; ids: (K,) their indices in lfw_subset."""

    faces: np.ndarray
    ids: np.ndarray


def identity_splits() -> dict[str, FaceIdentities]:
    """Disjoint identity splits, fixed: 60 train, 20 dev, 20 test."""
    order = np.random.default_rng(SPLIT_SEED).permutation(100)
    crops, out, start = face_crops(), {}, 0
    for name, n in SPLITS.items():
        ids = np.sort(order[start : start + n])
        out[name] = FaceIdentities(crops[ids], ids)
        start += n
    return out


def face_views(face: np.ndarray, n: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """n augmented views of one face crop: (n, size, size, 3) BGR uint8 (gray replicated, like a camera frame).

    Pose: rotation +-12 deg, scale 0.9-1.1, shift +-6% (an affine warp); lighting: gain and gamma; blur; a random
    occluding patch; mirroring.
    """
    base = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    views = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        angle, scale = rng.uniform(-12, 12), rng.uniform(0.9, 1.1)
        m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        m[:, 2] += rng.uniform(-0.06, 0.06, 2) * size
        v = cv2.warpAffine(base, m, (size, size), borderMode=cv2.BORDER_REFLECT)
        v = np.clip(255 * (v / 255.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.75, 1.25), 0, 255).astype(np.uint8)
        if rng.random() < 0.3:
            v = cv2.GaussianBlur(v, (5, 5), rng.uniform(0.5, 1.5))
        if rng.random() < 0.3:
            ph, pw = (int(x) for x in rng.integers(size // 8, size // 3, 2))
            y, x = int(rng.integers(0, size - ph)), int(rng.integers(0, size - pw))
            v[y : y + ph, x : x + pw] = rng.integers(0, 256)
        if rng.random() < 0.5:
            v = v[:, ::-1]
        views[i] = cv2.cvtColor(np.ascontiguousarray(v), cv2.COLOR_GRAY2BGR)
    return views


def make_face_scene(
    rng: np.random.Generator, faces: np.ndarray, image_size: tuple[int, int] = (256, 256), max_faces: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Face crops pasted onto a background at 24 px to half the image, not overlapping, for a one-class face
    detector. faces: (K, 25, 25) uint8. Returns image (H, W, 3) BGR uint8 and boxes (N, 4) float32 xyxy."""
    h_img, w_img = image_size
    image = random_background(rng, image_size)
    boxes: list[list[int]] = []
    for _ in range(int(rng.integers(1, max_faces + 1))):
        for _attempt in range(20):
            s = int(np.exp(rng.uniform(np.log(24), np.log(min(image_size) / 2))))
            x, y = int(rng.integers(0, w_img - s + 1)), int(rng.integers(0, h_img - s + 1))
            if any(x < b[2] and b[0] < x + s and y < b[3] and b[1] < y + s for b in boxes):
                continue
            view = face_views(faces[rng.integers(len(faces))], 1, rng, s)[0]
            image[y : y + s, x : x + s] = view
            boxes.append([x, y, x + s, y + s])
            break
    return image, np.array(boxes, np.float32).reshape(-1, 4)
