"""torch Datasets over the local data, fed by the runtime's one preprocessing function."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from edgepipe.export.augment import augment_detection, augment_pose, jitter
from edgepipe.postprocess.boxes import boxes_to_input, points_to_input
from edgepipe.runtime.preprocessing import PreprocessSpec, preprocess


def worker_rng() -> np.random.Generator:
    """A numpy generator drawn from torch's RNG: deterministic under torch.manual_seed, per DataLoader worker."""
    return np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))


class ImageClassification(Dataset):
    """Frames (N, H, W[, C]) uint8 and labels (N,) -> (preprocessed (C, H', W') float tensor, label).

    augment: small random rotation, scale and shift of each frame.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, spec: PreprocessSpec, augment: bool = False) -> None:
        self.images, self.labels, self.spec, self.augment = images, labels, spec, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = self.images[i]
        if self.augment:
            img = jitter(img, worker_rng())
        return torch.from_numpy(preprocess(img, self.spec).batch[0]), int(self.labels[i])


class Vectors(Dataset):
    """Flat features (N, n_x) float32 and labels (N,) for the dense networks."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]


class Detection(Dataset):
    """Scenes -> (preprocessed image (3, H, W), boxes (N, 4) in network-input pixels, class ids (N,))."""

    def __init__(self, images: list[np.ndarray], boxes: list[np.ndarray], class_ids: list[np.ndarray],
                 spec: PreprocessSpec, augment: bool = False) -> None:
        self.images, self.boxes, self.class_ids, self.spec, self.augment = images, boxes, class_ids, spec, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        img, bx, cl = self.images[i], self.boxes[i], self.class_ids[i]
        if self.augment:
            img, bx, cl = augment_detection(img, bx, cl, worker_rng())
        pre = preprocess(img, self.spec)
        return torch.from_numpy(pre.batch[0]), boxes_to_input(bx, pre.transforms[0]), cl


def detection_collate(batch: list) -> tuple[torch.Tensor, list[np.ndarray], list[np.ndarray]]:
    images, boxes, classes = zip(*batch, strict=True)
    return torch.stack(images), list(boxes), list(classes)


class PoseDetection(Dataset):
    """Scenes with landmarks -> (preprocessed image (3, H, W), boxes (N, 4) and keypoints (N, K, 3) x, y, v in
    network-input pixels, class ids (N,)); augmented by augment_pose (keypoints follow the image)."""

    def __init__(self, images: list[np.ndarray], boxes: list[np.ndarray], class_ids: list[np.ndarray],
                 keypoints: list[np.ndarray], spec: PreprocessSpec, augment: bool = False) -> None:
        self.images, self.boxes, self.class_ids, self.keypoints = images, boxes, class_ids, keypoints
        self.spec, self.augment = spec, augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        img, bx, cl, kp = self.images[i], self.boxes[i], self.class_ids[i], self.keypoints[i]
        if self.augment:
            img, bx, cl, kp = augment_pose(img, bx, cl, kp, worker_rng())
        pre = preprocess(img, self.spec)
        t = pre.transforms[0]
        points = np.concatenate([points_to_input(kp[:, :, :2], t), kp[:, :, 2:]], axis=2)
        return torch.from_numpy(pre.batch[0]), boxes_to_input(bx, t), cl, points


def pose_collate(batch: list) -> tuple[torch.Tensor, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    images, boxes, classes, keypoints = zip(*batch, strict=True)
    return torch.stack(images), list(boxes), list(classes), list(keypoints)
