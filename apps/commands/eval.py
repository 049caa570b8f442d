"""`edgepipe eval MODEL`: metrics of a checkpoint or an ONNX file on its local data (needs the train extra)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepipe.apps.commands.common import options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    from edgepipe.export.options import EVAL_CONF, EVAL_IOU, SPLITS, EvalOptions  # no torch: defaults defined there

    p = sub.add_parser("eval", help="evaluate a checkpoint (.pt) or an ONNX file on its data's split")
    p.add_argument("model", type=Path, help="runs/NAME/best.pt or model.onnx")
    p.add_argument("--split", default=EvalOptions.split, choices=SPLITS, help="the data's split (default: %(default)s)")
    p.add_argument("--data", type=Path, default=EvalOptions.data,
                   help="where generated data sets live (default: %(default)s)")
    p.add_argument("--conf", type=float, default=EvalOptions.conf,
                   help=f"detectors: score threshold for mAP (default {EVAL_CONF}; a file with NMS in its graph: "
                   "the graph's)")
    p.add_argument("--iou", type=float, default=EvalOptions.iou,
                   help=f"detectors: NMS IoU threshold (default {EVAL_IOU}; a file with NMS in its graph: the graph's)")
    p.add_argument("--provider", default=EvalOptions.provider,
                   help="for ONNX files: auto, cuda or cpu (default: %(default)s)")
    p.add_argument("--out", type=Path, help="write metrics.json and the PR/ROC PNG here")
    p.add_argument("--encoder", type=Path, help="a Siamese head's face encoder (default: its checkpoint's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgepipe.export.evaluate import evaluate
    from edgepipe.export.options import EvalOptions

    result = evaluate(options_from_args(EvalOptions, args))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['model']} ({result['backend']}, {result['task']}) on {result['data']}, {result['images']} images"
          + (f", conf {result['conf']:g}, iou {result['iou']:g}" if "conf" in result else ""))
    keys = {"classify": ("accuracy", "macro_f1"), "detect": ("map50", "map", "precision", "recall"),
            "embed": ("auc", "eer", "tar_at_far_1e-2", "tar_at_far_1e-3", "threshold_at_far_1e-3"),
            "verify": ("auc", "eer", "tar_at_far_1e-2", "distance_auc", "distance_eer", "distance_tar_at_far_1e-2")
            }[result["task"]]
    keypoints = ("keypoint_ap", "keypoint_ap50", "keypoint_error_px", "keypoint_error_median_px")
    for k in (*keys, *(k for k in keypoints if k in result)):
        print(f"  {k:<26}{result[k]:.4f}")
    if args.out:
        print(f"  written to {args.out}")
    return 0
