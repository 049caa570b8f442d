"""Each exported file's accuracy, measured on held-out data by `edgepipe eval`'s evaluator, and the budget."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

from edgepipe.export.evaluate import DENSE, evaluate
from edgepipe.export.options import EvalOptions, ExportOptions
from edgepipe.runtime.metadata import ModelMeta

log = logging.getLogger("edgepipe.export")

# Per task: the metric a variant's budget is judged by, then the numbers kept in the file's metadata.
KEY_METRICS = {
    "detect": ("map50", "map", "precision", "recall"),
    "classify": ("accuracy", "macro_f1"),
    "embed": ("auc", "eer", "tar_at_far_1e-2"),
}
METRIC_NAMES = {"map50": "mAP@0.5", "accuracy": "accuracy", "auc": "ROC AUC"}


def evaluable(meta: ModelMeta) -> bool:
    """Whether edgepipe has held-out data for this model: the digit classifiers, the detectors (generated shapes,
    or face scenes for yolo-face) and the face encoders. Zoo classifiers with fresh weights have none."""
    if meta.task == "classify":
        return meta.model_name in (*DENSE, "lenet5")
    return meta.task in KEY_METRICS


def measure(path: Path, options: ExportOptions, conf: float | None = None, iou: float | None = None,
            kind: str = "") -> dict:
    """The file's evaluation as written into its metadata: the metric judged ("metric"), the task's numbers
    (KEY_METRICS), the split, what the data was, how many images, for detectors conf, iou and max_det, and when.
    conf, iou: for detectors, as in EvalOptions (None: eval's defaults, or the graph's own NMS thresholds)."""
    log.info("measuring %s on the %s split", kind or path.name, options.split)
    result = evaluate(EvalOptions(path, options.split, options.data, conf=conf, iou=iou,
                                  progress=options.progress))
    keys = KEY_METRICS[result["task"]]
    evaluation = {"metric": keys[0], **{k: round(float(result[k]), 6) for k in keys},
                  "split": options.split, "data": result["data"], "images": result["images"]}
    evaluation.update({k: result[k] for k in ("conf", "iou", "max_det") if k in result})
    return {**evaluation, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def judged(evaluation: dict, reference: dict, kind: str, max_drop: float) -> dict:
    """evaluation with the variant's kind, the reference (the fp32 file's value measured the same way), the drop
    against it, the budget, and within_budget: drop <= max_drop."""
    key = evaluation["metric"]
    drop = round(reference[key] - evaluation[key], 6)
    return {**evaluation, "variant": kind, "reference": reference[key], "drop": drop, "budget": max_drop,
            "within_budget": drop <= max_drop}
