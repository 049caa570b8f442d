"""Losses: the course's YOLO loss (objectness, box, class, landmarks) and the triplet loss with in-batch mining."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from edgepipe.postprocess.anchors import assign_targets
from edgepipe.postprocess.errors import UserError

MINING = ("all", "hard", "semi-hard")


@dataclass(frozen=True)
class YoloTargets:
    """Dense targets for a (B, A, 5+C, S_h, S_w) prediction.

    obj: (B, A, S_h, S_w) float 1 where an anchor is responsible for an object. xy: (B, A, 2, S_h, S_w) center
    offsets in the cell. wh: (B, A, 2, S_h, S_w) log size ratios to the anchor. cls: (B, A, S_h, S_w) int64.
    """

    obj: torch.Tensor
    xy: torch.Tensor
    wh: torch.Tensor
    cls: torch.Tensor


def build_yolo_targets(
    boxes: list[np.ndarray], class_ids: list[np.ndarray], anchors: np.ndarray, grid: tuple[int, int],
    input_size: tuple[int, int],
) -> YoloTargets:
    """The course's assignment: each object goes to the cell holding its center and to the anchor whose shape
    has the highest IoU with it (postprocess.assign_targets). boxes: per image (N, 4) xyxy input pixels."""
    b, a = len(boxes), len(anchors)
    s_h, s_w = grid
    obj = np.zeros((b, a, s_h, s_w), np.float32)
    xy = np.zeros((b, a, 2, s_h, s_w), np.float32)
    wh = np.zeros((b, a, 2, s_h, s_w), np.float32)
    cls = np.zeros((b, a, s_h, s_w), np.int64)
    for i, (bx, cl) in enumerate(zip(boxes, class_ids, strict=True)):
        if len(bx) == 0:
            continue
        t = assign_targets(bx, anchors, grid, input_size)
        obj[i, t.anchor_ids, t.rows, t.cols] = 1.0
        xy[i, t.anchor_ids, :, t.rows, t.cols] = t.offsets
        wh[i, t.anchor_ids, :, t.rows, t.cols] = t.log_wh
        cls[i, t.anchor_ids, t.rows, t.cols] = cl
    return YoloTargets(*(torch.from_numpy(v) for v in (obj, xy, wh, cls)))


@dataclass(frozen=True)
class KeypointTargets:
    """Landmark targets for a pose head. offsets: (B, A, K, 2, S_h, S_w) the course's two numbers per landmark, the
    offset from the object's box center in units of the box's width and height; mask: (B, A, K, S_h, S_w) float 1
    for the responsible anchor's labeled landmarks (v > 0)."""

    offsets: torch.Tensor
    mask: torch.Tensor


def build_keypoint_targets(
    boxes: list[np.ndarray], keypoints: list[np.ndarray], anchors: np.ndarray, grid: tuple[int, int],
    input_size: tuple[int, int],
) -> KeypointTargets:
    """The landmarks of each object, for the cell and anchor build_yolo_targets makes responsible for it (the same
    assignment). boxes: per image (N, 4) xyxy input pixels; keypoints: per image (N, K, 3) x, y (input pixels), v."""
    b, a, k = len(boxes), len(anchors), keypoints[0].shape[1] if keypoints else 0
    s_h, s_w = grid
    offsets = np.zeros((b, a, k, 2, s_h, s_w), np.float32)
    mask = np.zeros((b, a, k, s_h, s_w), np.float32)
    for i, (bx, kp) in enumerate(zip(boxes, keypoints, strict=True)):
        if len(bx) == 0:
            continue
        t = assign_targets(bx, anchors, grid, input_size)
        center = (bx[:, :2] + bx[:, 2:]) / 2  # (N, 2) x, y
        size = np.maximum(bx[:, 2:] - bx[:, :2], 1.0)  # (N, 2) w, h in input pixels
        offsets[i, t.anchor_ids, :, :, t.rows, t.cols] = (kp[:, :, :2] - center[:, None]) / size[:, None]
        mask[i, t.anchor_ids, :, t.rows, t.cols] = kp[:, :, 2] > 0
    return KeypointTargets(torch.from_numpy(offsets), torch.from_numpy(mask))


def keypoint_loss(pred: torch.Tensor, targets: KeypointTargets, num_anchors: int) -> torch.Tensor:
    """Squared error of the last 2K channels per anchor of pred (B, A*(5+C+2K), S_h, S_w) to the offsets, for the
    responsible anchors' labeled landmarks only; summed over the grid, averaged over the batch."""
    b, ch, s_h, s_w = pred.shape
    k = targets.offsets.shape[2]
    p = pred.view(b, num_anchors, ch // num_anchors, s_h, s_w)[:, :, ch // num_anchors - 2 * k :]
    p = p.reshape(b, num_anchors, k, 2, s_h, s_w)
    mask = targets.mask.to(pred.dtype).unsqueeze(3)  # (B, A, K, 1, S_h, S_w)
    return ((p - targets.offsets.to(pred.dtype)) ** 2 * mask).sum() / b


def yolo_loss(
    pred: torch.Tensor, targets: YoloTargets, num_anchors: int, lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
    extra: int = 0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """pred: (B, A*(5+C+extra), S_h, S_w) raw output (extra: channels after the class logits, 2K for a pose head).
    Objectness: binary cross-entropy on sigmoid(to) everywhere (no-object cells weighted lambda_noobj); box: squared
    error of sigmoid(tx, ty) to the offsets and of (tw, th) to the log size ratios, for responsible anchors only
    (weighted lambda_coord); class: softmax cross-entropy for responsible anchors only. Summed over the grid,
    averaged over the batch. Returns the loss and its parts."""
    b, ch, s_h, s_w = pred.shape
    p = pred.view(b, num_anchors, ch // num_anchors, s_h, s_w)[:, :, : ch // num_anchors - extra]
    obj = targets.obj.to(pred.dtype)  # the targets follow the prediction's dtype (float64 for gradient checks)
    noobj = 1.0 - obj
    bce = F.binary_cross_entropy_with_logits(p[:, :, 4], obj, reduction="none")
    l_obj = (bce * obj).sum() + lambda_noobj * (bce * noobj).sum()
    resp = obj.unsqueeze(2)  # (B, A, 1, S, S)
    l_xy = ((torch.sigmoid(p[:, :, 0:2]) - targets.xy.to(pred.dtype)) ** 2 * resp).sum()
    l_wh = ((p[:, :, 2:4] - targets.wh.to(pred.dtype)) ** 2 * resp).sum()
    logits = p[:, :, 5:].permute(0, 1, 3, 4, 2)[obj > 0]  # (K, C)
    l_cls = F.cross_entropy(logits, targets.cls[obj > 0], reduction="sum") if len(logits) else pred.sum() * 0
    total = (l_obj + lambda_coord * (l_xy + l_wh) + l_cls) / b
    parts = {"obj": l_obj.item() / b, "box": (l_xy + l_wh).item() / b, "cls": l_cls.item() / b}
    return total, parts


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, alpha: float = 0.2
                 ) -> torch.Tensor:
    """FaceNet: mean over triplets of max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0). Inputs (T, D)."""
    d_ap = ((anchor - positive) ** 2).sum(1)
    d_an = ((anchor - negative) ** 2).sum(1)
    return F.relu(d_ap - d_an + alpha).mean()


def batch_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, alpha: float = 0.2, mining: str = "semi-hard"
                       ) -> torch.Tensor:
    """Triplet loss with triplets chosen inside a P x K batch (P people, K views each).

    embeddings: (B, D); labels: (B,) int. mining "hard": for each anchor its farthest positive and closest
    negative (batch-hard); "semi-hard": for each (anchor, positive) pair the closest negative farther than the
    positive (d_an > d_ap), or the hardest negative when none is; "all": every valid triplet. Mean over triplets.
    """
    if mining not in MINING:
        raise UserError(f"mining must be one of {MINING}, but got {mining!r}")
    d = torch.cdist(embeddings, embeddings).pow(2)  # (B, B) squared distances
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos, neg = same & ~eye, ~same
    if mining == "hard":
        hardest_pos = (d * pos).max(1).values
        hardest_neg = d.masked_fill(~neg, float("inf")).min(1).values
        valid = pos.any(1) & neg.any(1)
        return F.relu(hardest_pos - hardest_neg + alpha)[valid].mean()
    a_idx, p_idx = pos.nonzero(as_tuple=True)
    d_ap = d[a_idx, p_idx][:, None]  # (P, 1)
    d_an = d[a_idx]  # (P, B)
    if mining == "all":
        losses = F.relu(d_ap - d_an + alpha)[neg[a_idx]]
        return losses.mean()
    semi = neg[a_idx] & (d_an > d_ap)
    semi_neg = d_an.masked_fill(~semi, float("inf")).min(1).values
    hard_neg = d_an.masked_fill(~neg[a_idx], float("inf")).min(1).values
    chosen = torch.where(torch.isinf(semi_neg), hard_neg, semi_neg)
    return F.relu(d_ap[:, 0] - chosen + alpha).mean()
