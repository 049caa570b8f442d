"""Faces from scikit-image's lfw_subset: one identity per real face crop, its views made by augmentation.

skimage.data.lfw_subset() is (200, 25, 25) float gray in [0, 1]: rows 0..99 are face crops of 100 LFW photos,
rows 100..199 are non-faces (background patches; it was made for a face/non-face classifier). It has no identity
labels and one photo per crop, so each face crop is its own identity and a person's "photos" are augmented views
of it (pose, scale, lighting, blur, occlusion, mirroring). The 100 identities are split 60 / 20 / 20
(train / dev / test) by a fixed permutation (seed 0): evaluation uses identities never seen in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from edgepipe.export.data.backgrounds import random_background
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.faces import face_crop

SPLIT_SEED = 0
N_FACES = 100  # lfw_subset rows 0..99 are faces
SPLITS = {"train": 60, "dev": 20, "test": 20}
MIN_FACE = 24  # smallest face side in a scene, pixels
SKIN_GAIN = ((0.70, 0.80, 0.95), (0.95, 1.00, 1.15))  # B, G, R gain ranges that tint a gray face skin-like
KIOSK_BOX_JITTER = 0.06  # a detector box edge is off by up to this share of the face side
KIOSK_MARGIN = (0.0, 0.25)  # face_crop margins the kiosk apps use (0.0 in FaceAnalyzer, 0.2 by default)


@lru_cache(maxsize=1)
def face_crops() -> np.ndarray:
    """The face crops of lfw_subset: (100, 25, 25) uint8 gray, read-only."""
    import skimage.data

    crops = np.round(skimage.data.lfw_subset()[:N_FACES] * 255).astype(np.uint8)
    crops.flags.writeable = False
    return crops


@dataclass(frozen=True)
class FaceIdentities:
    """One split's identities. faces: (K, 25, 25) uint8 gray, one crop per identity; ids: (K,) int64 rows in
    lfw_subset (sorted)."""

    faces: np.ndarray
    ids: np.ndarray


def identity_splits() -> dict[str, FaceIdentities]:
    """Disjoint identity splits, fixed: {"train": 60, "dev": 20, "test": 20} identities."""
    order = np.random.default_rng(SPLIT_SEED).permutation(N_FACES)
    crops, out, start = face_crops(), {}, 0
    for name, n in SPLITS.items():
        ids = np.sort(order[start : start + n]).astype(np.int64)
        out[name] = FaceIdentities(crops[ids], ids)
        start += n
    return out


def face_views(face: np.ndarray, n: int, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """n augmented views of one face crop, as BGR camera frames (the gray crop replicated to three channels).

    face: (h, w) uint8 gray. Each view: resized to size x size (bicubic), an affine warp (rotation +-12 deg,
    scale 0.9..1.1, shift +-6% of the side, reflected border), gamma 0.7..1.4 and gain 0.75..1.25, a Gaussian
    blur (p = 0.3), a flat occluding patch of 1/8..1/3 of the side (p = 0.3), mirroring (p = 0.5).
    Returns: (n, size, size, 3) uint8.
    """
    arr = np.asarray(face)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise UserError(f"face must be an (h, w) uint8 gray crop, but got shape {arr.shape} dtype {arr.dtype}")
    if n < 0 or size < 8:
        raise UserError(f"n must be >= 0 and size >= 8, but got n={n}, size={size}")
    base = cv2.resize(arr, (size, size), interpolation=cv2.INTER_CUBIC)
    views = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        views[i] = cv2.cvtColor(_augment(base, rng), cv2.COLOR_GRAY2BGR)
    return views


def _augment(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One view of a (size, size) uint8 gray face (see face_views). Returns (size, size) uint8, a new array."""
    size = base.shape[0]
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-12, 12), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.06, 0.06, 2) * size
    v = cv2.warpAffine(base, m, (size, size), borderMode=cv2.BORDER_REFLECT)
    v = np.clip(255 * (v / 255.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.75, 1.25), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        v = cv2.GaussianBlur(v, (5, 5), rng.uniform(0.5, 1.5))
    if rng.random() < 0.3:
        ph, pw = (int(s) for s in rng.integers(size // 8, size // 3, 2))
        y, x = int(rng.integers(0, size - ph)), int(rng.integers(0, size - pw))
        v[y : y + ph, x : x + pw] = rng.integers(0, 256)
    if rng.random() < 0.5:
        v = v[:, ::-1]
    return np.ascontiguousarray(v)


def identity_batch(
    rng: np.random.Generator, faces: np.ndarray, p: int, k: int, size: int = 96
) -> tuple[np.ndarray, np.ndarray]:
    """A triplet-mining batch: p distinct identities x k views each (FaceNet's in-batch mining).

    faces: (K, h, w) uint8 gray, one crop per identity, K >= p. Returns views (p * k, size, size, 3) BGR uint8,
    identity-major (the k views of one identity are consecutive), and labels (p * k,) int64 rows of faces.
    """
    if not 1 <= p <= len(faces) or k < 1:
        raise UserError(f"p must be in [1, {len(faces)}] (the identities given) and k >= 1, but got p={p}, k={k}")
    ids = np.sort(rng.choice(len(faces), p, replace=False)).astype(np.int64)
    views = np.concatenate([face_views(faces[i], k, rng, size) for i in ids])  # (p * k, size, size, 3)
    return views, np.repeat(ids, k)


def paste_faces(
    rng: np.random.Generator, faces: np.ndarray, background: np.ndarray, max_faces: int = 3,
    face_px: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Paste 1..max_faces face views onto a copy of background, for a one-class face detector.

    Each face: a random crop of faces (K, h, w) uint8, a square whose side is log-uniform in face_px (smallest,
    largest) pixels (None: MIN_FACE to half the short side), skin-tinted, cut to its inscribed ellipse, not
    overlapping another face. background: (H, W, 3) BGR uint8, not modified. Returns image (H, W, 3) BGR uint8 and
    boxes (N, 4) float32 xyxy pixel edges (the square each face was pasted into).
    """
    bg = np.asarray(background)
    if bg.ndim != 3 or bg.shape[2] != 3 or bg.dtype != np.uint8 or min(bg.shape[:2]) < 2 * MIN_FACE:
        raise UserError(f"background must be an (H, W, 3) uint8 image with sides >= {2 * MIN_FACE}, "
                         f"but got shape {bg.shape} dtype {bg.dtype}")
    if max_faces < 1 or len(faces) < 1:
        raise UserError(f"max_faces and len(faces) must be >= 1, but got {max_faces} and {len(faces)}")
    h_img, w_img = bg.shape[:2]
    low, high = _face_px_range(face_px, (h_img, w_img))
    image = bg.copy()
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, max_faces + 1))):
        for _attempt in range(20):
            s = int(np.exp(rng.uniform(np.log(low), np.log(high))))
            x, y = int(rng.integers(0, w_img - s + 1)), int(rng.integers(0, h_img - s + 1))
            if any(x < b[2] and b[0] < x + s and y < b[3] and b[1] < y + s for b in boxes):
                continue
            view = face_views(faces[rng.integers(len(faces))], 1, rng, s)[0]
            tinted = np.clip(view * rng.uniform(*SKIN_GAIN), 0, 255).astype(np.uint8)  # (s, s, 3)
            oval = cv2.ellipse(np.zeros((s, s), np.uint8), (s * 8 - 8, s * 8 - 8), (s * 8 - 8, s * 8 - 8), 0, 0, 360,
                               1, -1, cv2.LINE_8, 4).astype(bool)  # inscribed ellipse, center and axes (s-1)/2
            image[y : y + s, x : x + s][oval] = tinted[oval]
            boxes.append((x, y, x + s, y + s))
            break
    return image, np.array(boxes, np.float32).reshape(-1, 4)


def _face_px_range(face_px: tuple[int, int] | None, size: tuple[int, int]) -> tuple[float, float]:
    """paste_faces' (smallest, largest) face side in an image of size (height, width), checked."""
    if face_px is None:
        return MIN_FACE, min(size) / 2
    if len(face_px) != 2 or not 1 <= face_px[0] <= face_px[1] <= min(size):
        raise UserError(f"face_px must be (smallest, largest) sides with 1 <= smallest <= largest <= {min(size)} "
                         f"(the image's short side), but got {face_px!r}: e.g. (40, 240) in a 480x640 frame")
    return face_px[0], face_px[1]


def make_face_scene(
    rng: np.random.Generator, faces: np.ndarray, image_size: tuple[int, int] = (256, 256), max_faces: int = 3,
    face_px: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """paste_faces (faces of face_px sides) on a random_background of image_size (height, width): image (H, W, 3)
    BGR uint8, boxes (N, 4) float32 xyxy."""
    return paste_faces(rng, faces, random_background(rng, image_size), max_faces, face_px)


def kiosk_face_views(
    face: np.ndarray, n: int, rng: np.random.Generator, size: int = 96, p: float = 0.7
) -> np.ndarray:
    """n views of one face crop, each with probability p as the kiosk's encoder sees it, else a face_views view.

    A kiosk view: a face_views view of side s (size..2 * size px), skin-tinted (SKIN_GAIN) and cut to its inscribed
    ellipse over a random_background, as paste_faces and the kiosk video draw faces; then cut by runtime's
    face_crop around a detector-like box (the face's square, each edge moved by up to KIOSK_BOX_JITTER * s) with a
    margin in KIOSK_MARGIN, resized to size x size. face: (h, w) uint8 gray. Returns: (n, size, size, 3) BGR uint8.
    """
    arr = np.asarray(face)
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise UserError(f"face must be an (h, w) uint8 gray crop, but got shape {arr.shape} dtype {arr.dtype}")
    if n < 0 or size < 8:
        raise UserError(f"n must be >= 0 and size >= 8, but got n={n}, size={size}")
    if not 0.0 <= p <= 1.0:
        raise UserError(f"p must be a probability in [0, 1], but got {p}: 0.7 makes 70% of the views kiosk crops")
    views = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        views[i] = _kiosk_view(arr, rng, size) if rng.random() < p else face_views(arr, 1, rng, size)[0]
    return views


def _kiosk_view(face: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """One kiosk crop of face (h, w) uint8 gray (see kiosk_face_views). Returns (size, size, 3) BGR uint8."""
    s = int(rng.integers(size, 2 * size + 1))
    tinted = np.clip(face_views(face, 1, rng, s)[0] * rng.uniform(*SKIN_GAIN), 0, 255).astype(np.uint8)  # (s, s, 3)
    oval = cv2.ellipse(np.zeros((s, s), np.uint8), (s * 8 - 8, s * 8 - 8), (s * 8 - 8, s * 8 - 8), 0, 0, 360,
                       1, -1, cv2.LINE_8, 4).astype(bool)  # inscribed ellipse, center and axes (s-1)/2
    pad = s // 2  # room around the face for the margin and the box jitter
    canvas = random_background(rng, (s + 2 * pad, s + 2 * pad))  # (s + 2 pad, s + 2 pad, 3)
    canvas[pad : pad + s, pad : pad + s][oval] = tinted[oval]
    box = np.array([pad, pad, pad + s, pad + s], np.float64) + rng.uniform(-1, 1, 4) * KIOSK_BOX_JITTER * s  # xyxy
    return face_crop(canvas, box, (size, size), rng.uniform(*KIOSK_MARGIN))
