"""Evaluation metrics: classifier P/R/F1, detector mAP by pycocotools, encoder ROC on held-out identities."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from edgepipe.postprocess.agreement import greedy_matches
from edgepipe.postprocess.calibration import equal_error_rate, roc_auc, roc_curve, threshold_at_far
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.embeddings import distance_matrix


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy, per-class precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2/(1/P + 1/R), confusion matrix
    (rows: true class, columns: predicted)."""
    c = len(class_names)
    confusion = np.zeros((c, c), np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(np.float64)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(c), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(c), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(c), where=(precision + recall) > 0)
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "macro_f1": float(f1.mean()),
        "per_class": {n: {"precision": float(p), "recall": float(r), "f1": float(f)}
                      for n, p, r, f in zip(class_names, precision, recall, f1, strict=True)},
        "confusion": confusion.tolist(),
    }


def coco_results(detections: Sequence[Detections], image_ids: Sequence[int]) -> list[dict]:
    """Detections per image -> COCO result dicts (bbox xywh, category_id = class id + 1)."""
    out = []
    for det, image_id in zip(detections, image_ids, strict=True):
        for (x1, y1, x2, y2), s, c in zip(det.xyxy.tolist(), det.scores.tolist(), det.class_ids.tolist(),
                                          strict=True):
            out.append({"image_id": int(image_id), "category_id": int(c) + 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "score": float(s)})
    return out


def detection_metrics(coco_gt: dict, detections: Sequence[Detections], operating_threshold: float = 0.25,
                      iou_threshold: float = 0.5) -> dict:
    """mAP@0.5 and mAP@0.5:0.95 by pycocotools' COCOeval (detections in the order of coco_gt["images"]), plus
    precision and recall at the operating score threshold (greedy matching at IoU >= 0.5, per class), and the
    PR curve at IoU 0.5 (recall points, precision averaged over classes)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_ids = [img["id"] for img in coco_gt["images"]]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = coco_gt
        gt.createIndex()
        results = coco_results(detections, image_ids)
        if not results:
            return {"map50": 0.0, "map": 0.0, "precision": 0.0, "recall": 0.0, "pr_curve": []}
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision_at_50 = ev.eval["precision"][0, :, :, 0, 2]  # (101 recall points, classes) at IoU 0.5, all areas
    pr = np.where(precision_at_50 < 0, np.nan, precision_at_50)
    p, r = precision_recall(coco_gt, detections, operating_threshold, iou_threshold)
    return {
        "map50": float(ev.stats[1]),
        "map": float(ev.stats[0]),
        "precision": p,
        "recall": r,
        "pr_curve": [[float(x), float(y)] for x, y in zip(ev.params.recThrs, np.nanmean(pr, axis=1), strict=True)],
    }


def precision_recall(coco_gt: dict, detections: Sequence[Detections], score_threshold: float,
                     iou_threshold: float = 0.5) -> tuple[float, float]:
    """Precision and recall of detections with score >= score_threshold: each ground-truth box matches at most
    one detection of its class (highest score first) with IoU >= iou_threshold."""
    matches, unmatched, n_gt = match_detections(coco_gt, detections, score_threshold, iou_threshold)
    tp = len(matches)
    return (tp / (tp + unmatched) if tp + unmatched else 0.0), (tp / n_gt if n_gt else 0.0)


def match_detections(coco_gt: dict, detections: Sequence[Detections], score_threshold: float,
                     iou_threshold: float = 0.5) -> tuple[list[tuple[dict, Detections, int]], int, int]:
    """Greedy matching of detections (score >= score_threshold, highest first) to ground-truth boxes of their class
    with IoU >= iou_threshold, each box matched at most once. Returns the matches (the ground-truth annotation, the
    image's kept detections, the index of the matched one among them), the unmatched detections and the number of
    ground-truth boxes."""
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco_gt["images"]}
    for ann in coco_gt["annotations"]:
        by_image[ann["image_id"]].append(ann)
    matches, unmatched, n_gt = [], 0, 0
    for img, det in zip(coco_gt["images"], detections, strict=True):
        anns = by_image[img["id"]]
        gt = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                       for a in anns], np.float32).reshape(-1, 4)
        gt_cls = np.array([a["category_id"] - 1 for a in anns])
        n_gt += len(gt)
        d = det.filter(min_score=score_threshold)
        pairs = greedy_matches(d.xyxy, d.scores, d.class_ids, gt, gt_cls, iou_threshold)
        matches += [(anns[j], d, int(i)) for i, j in pairs]
        unmatched += len(d) - len(pairs)
    return matches, unmatched, n_gt


def keypoint_metrics(coco_gt: dict, detections: Sequence[Detections], sigma: float,
                     operating_threshold: float = 0.25, iou_threshold: float = 0.5) -> dict:
    """Landmark quality of detections with keypoints against COCO keypoint annotations (x, y, v; v > 0 labeled).

    keypoint_ap, keypoint_ap50: pycocotools' COCOeval "keypoints" (OKS with the per-keypoint constant sigma for
    every slot), AP@[0.5:0.95] and AP@0.5. keypoint_error_px: the mean pixel distance between the labeled landmarks
    of each ground-truth object and those of the detection matched to it at the operating threshold (as precision
    and recall match them); keypoint_error_median_px; keypoints_compared: how many landmarks that averages (the
    error keys are left out when it is 0).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    errors = []
    for ann, det, i in match_detections(coco_gt, detections, operating_threshold, iou_threshold)[0]:
        truth = np.array(ann["keypoints"], np.float64).reshape(-1, 3)
        labeled = truth[:, 2] > 0
        errors += np.linalg.norm(det.keypoints[i][labeled] - truth[labeled, :2], axis=1).tolist()
    k = len(coco_gt["annotations"][0]["keypoints"]) // 3 if coco_gt["annotations"] else 0
    results = _keypoint_results(coco_gt, detections)
    stats = [0.0, 0.0]
    if results and k:
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO()
            gt.dataset = coco_gt
            gt.createIndex()
            ev = COCOeval(gt, gt.loadRes(results), "keypoints")
            ev.params.kpt_oks_sigmas = np.full(k, sigma)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        stats = [float(ev.stats[0]), float(ev.stats[1])]
    result = {"keypoint_ap": stats[0], "keypoint_ap50": stats[1], "keypoints_compared": len(errors)}
    if errors:
        result.update(keypoint_error_px=float(np.mean(errors)), keypoint_error_median_px=float(np.median(errors)))
    return result


def _keypoint_results(coco_gt: dict, detections: Sequence[Detections]) -> list[dict]:
    """coco_results with each detection's keypoints as COCO's [x1, y1, s1, ...] (s: its keypoint score, or 1)."""
    results = coco_results(detections, [img["id"] for img in coco_gt["images"]])
    points = [np.concatenate([det.keypoints, (det.keypoint_scores if det.keypoint_scores is not None else
                                              np.ones(det.keypoints.shape[:2], np.float32))[:, :, None]], axis=2)
              for det in detections if len(det)]
    for entry, kp in zip(results, (p for image in points for p in image), strict=True):
        entry["keypoints"] = kp.reshape(-1).astype(float).tolist()
    return results


def embedding_metrics(embeddings: np.ndarray, labels: np.ndarray, metric: str = "squared_l2") -> dict:
    """Genuine (same label) and impostor pair distances of held-out embeddings -> pair_metrics."""
    d = distance_matrix(embeddings, embeddings, metric)
    iu = np.triu_indices(len(labels), k=1)
    same = (labels[:, None] == labels[None, :])[iu]
    return pair_metrics(d[iu][same], d[iu][~same])


def pair_metrics(genuine: np.ndarray, impostor: np.ndarray) -> dict:
    """Pair scores where smaller means the same person (distances; 1 - probability for a Siamese head): ROC AUC,
    EER, TAR at FAR 1e-2 and 1e-3, the threshold for FAR 1e-3 (what the kiosk would use) and the ROC."""
    roc = roc_curve(genuine, impostor)
    eer, eer_threshold = equal_error_rate(genuine, impostor)
    at2, at3 = threshold_at_far(genuine, impostor, 1e-2), threshold_at_far(genuine, impostor, 1e-3)
    pick = np.unique(np.linspace(0, len(roc.far) - 1, 200).astype(int))  # 200 points are enough for a plot
    return {
        "auc": roc_auc(roc), "eer": eer, "eer_threshold": eer_threshold,
        "tar_at_far_1e-2": at2.tar, "tar_at_far_1e-3": at3.tar, "threshold_at_far_1e-3": at3.threshold,
        "genuine_pairs": len(genuine), "impostor_pairs": len(impostor),
        "genuine_mean": float(genuine.mean()), "impostor_mean": float(impostor.mean()),
        "roc": {"far": roc.far[pick].tolist(), "tar": roc.tar[pick].tolist()},
    }
