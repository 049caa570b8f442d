"""Windows for the sliding-window classifier, cut from generated scenes of shapes about the window's size.

A window shows an object when its center is within POSITIVE_SHIFT px (on each axis) of the object's box center: the
convolutional form's windows lie 2 px apart, so every object has one that near. It is background when its center is
at least NEGATIVE_SHIFT px (on some axis) from every object's center; windows in between are not used (neither
clearly one nor the other). Nothing is resized: a window is the scene's own pixels, as the convolutional form sees
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from edgepipe.export.data.detection import CLASS_NAMES, DatasetConfig, Scene, coco_dict, split_scenes
from edgepipe.export.models.windows import WINDOW, WINDOW_STRIDE
from edgepipe.export.options import SPLITS

BACKGROUND = len(CLASS_NAMES)  # the label of a window that shows no object
WINDOW_NAMES = (*CLASS_NAMES, "background")  # the window classifier's classes
# Scenes of small shapes (sides 10..14 px, so that a 14 px window holds one) at the convolutional form's input size.
WINDOW_SCENES = DatasetConfig(n_train=2000, n_dev=200, n_test=300, image_size=(96, 96), min_size=10, max_size=14,
                              max_objects=6)
POSITIVE_SHIFT = 1  # px: a window this close to an object's center (each axis) shows the object
NEGATIVE_SHIFT = 4  # px: a window at least this far from every object's center (on some axis) is background
POSITIVES_PER_OBJECT = 3  # windows cut around each object, at random shifts
NEGATIVES_PER_SCENE = 30  # background windows per scene: two in three near an object (cutting it), the rest anywhere


def window_scenes(split: str, tiny: bool = False) -> list[Scene]:
    """The scenes of one split of WINDOW_SCENES, generated in memory (deterministic); tiny: 48 / 16 / 16 scenes."""
    config = replace(WINDOW_SCENES, n_train=48, n_dev=16, n_test=16) if tiny else WINDOW_SCENES
    return list(split_scenes(config, split))


def window_split(split: str, tiny: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The windows of one split: (K, 14, 14, 3) BGR uint8 and their labels (K,) int64 into WINDOW_NAMES; windows
    are cut with a generator seeded [seed, split index], so a split's windows are always the same."""
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    parts = [cut_windows(scene, rng) for scene in window_scenes(split, tiny)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def cut_windows(scene: Scene, rng: np.random.Generator, positives: int = POSITIVES_PER_OBJECT,
                negatives: int = NEGATIVES_PER_SCENE) -> tuple[np.ndarray, np.ndarray]:
    """Windows of one scene: `positives` per object (center shifted by up to POSITIVE_SHIFT px on each axis, those
    that fit in the image) labeled with its class, and up to `negatives` background windows. Returns (K, 14, 14, 3)
    uint8 and (K,) int64."""
    centers = (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2  # (N, 2) x, y
    windows, labels = [], []
    for (cx, cy), c in zip(centers, scene.class_ids, strict=True):
        for dx, dy in rng.integers(-POSITIVE_SHIFT, POSITIVE_SHIFT + 1, (positives, 2)):
            _take(scene.image, round(cx - WINDOW / 2) + dx, round(cy - WINDOW / 2) + dy, int(c), windows, labels)
    for x, y in _background_corners(scene.image.shape[:2], centers, rng, negatives):
        _take(scene.image, x, y, BACKGROUND, windows, labels)
    return (np.stack(windows) if windows else np.zeros((0, WINDOW, WINDOW, 3), np.uint8)), np.array(labels, np.int64)


def _take(image: np.ndarray, x: int, y: int, label: int, windows: list, labels: list) -> None:
    """Append the window with top-left corner (x, y) and its label, when it lies inside the image."""
    h, w = image.shape[:2]
    if 0 <= x <= w - WINDOW and 0 <= y <= h - WINDOW:
        windows.append(image[y : y + WINDOW, x : x + WINDOW])
        labels.append(label)


def _background_corners(size: tuple[int, int], centers: np.ndarray, rng: np.random.Generator,
                        n: int) -> Iterator[tuple[int, int]]:
    """Up to n top-left corners of windows whose center is at least NEGATIVE_SHIFT px from every object center (on
    some axis): two in three drawn near a random object (NEGATIVE_SHIFT..WINDOW px away: windows that cut objects),
    the rest anywhere. size: (height, width); centers: (N, 2) x, y."""
    h, w = size
    for i in range(n):
        if i % 3 != 2 and len(centers):
            away = rng.uniform(NEGATIVE_SHIFT, WINDOW, 2) * rng.choice([-1, 1], 2)
            cx, cy = centers[rng.integers(len(centers))] + away
        else:
            cx, cy = rng.uniform(WINDOW / 2, w - WINDOW / 2), rng.uniform(WINDOW / 2, h - WINDOW / 2)
        if len(centers) == 0 or (np.abs(centers - (cx, cy)).max(axis=1) >= NEGATIVE_SHIFT).all():
            yield round(cx - WINDOW / 2), round(cy - WINDOW / 2)


def window_detection_split(split: str, tiny: bool = False) -> tuple[list[np.ndarray], dict]:
    """The scenes of a split for the convolutional form's detection metrics: images (96, 96, 3) BGR uint8 and the
    COCO dict of their boxes."""
    scenes = window_scenes(split, tiny)
    coco = coco_dict([(f"{split}/{i:05d}.png", s) for i, s in enumerate(scenes)], WINDOW_SCENES.image_size)
    return [s.image for s in scenes], coco


def window_meta(convolutional: bool = False, input_size: tuple[int, int] | None = None) -> dict:
    """The flat metadata of the window classifier (14x14 windows, WINDOW_NAMES) or of its convolutional form (a
    "windows" detector of CLASS_NAMES over input_size images, letterboxed; default: the window scenes' size). Both
    carry the window and its stride."""
    common = {"channel_order": "RGB", "mean": [0.0], "std": [1.0], "window": [WINDOW, WINDOW],
              "window_stride": WINDOW_STRIDE}
    if not convolutional:
        return {**common, "task": "classify", "imgsz": [WINDOW, WINDOW], "names": list(WINDOW_NAMES),
                "resize": "resize", "model_name": "window"}
    return {**common, "task": "detect", "imgsz": list(input_size or WINDOW_SCENES.image_size),
            "names": list(CLASS_NAMES), "head": "windows", "resize": "letterbox", "pad_value": 114,
            "model_name": "window-conv"}
