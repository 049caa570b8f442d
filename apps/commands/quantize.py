"""`edgepipe quantize MODEL.onnx --calib DIR`: int8 (and fp16, uint8-input) variants of any ONNX detector, checked
against the model's own detections (no PyTorch needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgepipe.apps.commands.common import parse_meta, refusals
from edgepipe.apps.quantize import QuantizeOptions, quantize


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="int8 (fp16, uint8-input) variants of any ONNX detector, calibrated on your "
                       "images and checked against the model's own detections",
                       description="Static int8 QDQ quantization (head kept fp32) of a detector `detect` can run, "
                       "an Ultralytics YOLOv8/YOLO11 export included, calibrated on your images; each variant is "
                       "checked against the original's detections on held-back images and written only when they "
                       "agree.")
    p.add_argument("model", type=Path, help="a float32 detection .onnx (edgepipe, Ultralytics, or described by a "
                   "sidecar MODEL.json or --meta)")
    p.add_argument("--calib", required=True, help="a folder or glob of images like those the model will see")
    p.add_argument("--out", type=Path, help="OUT.onnx: the variants go to OUT.int8.onnx ... (default: beside MODEL)")
    p.add_argument("--fp16", action="store_true", help="also write the fp16 variant")
    p.add_argument("--uint8-input", action="store_true",
                   help="also write a variant that takes the resized uint8 BGR frames and normalizes them itself")
    p.add_argument("--holdout", type=int, default=QuantizeOptions.holdout,
                   help="images (the last by name) held back to check the variants; the rest calibrate "
                   "(default %(default)s)")
    p.add_argument("--conf", type=float, default=QuantizeOptions.conf,
                   help="score threshold both models are compared at (default %(default)s)")
    p.add_argument("--iou", type=float, default=QuantizeOptions.iou, help="NMS IoU threshold (default %(default)s)")
    p.add_argument("--min-agreement", type=float, default=QuantizeOptions.min_agreement,
                   help="a variant whose precision or recall against the original's boxes is below this is not "
                   "written (default %(default)s)")
    p.add_argument("--keep-failed", action="store_true", help="write the variants below the budget too, and exit 0")
    p.add_argument("--bench-runs", type=int, default=QuantizeOptions.bench_runs,
                   help="interleaved timed runs per file for the report's p50 latency (default %(default)s)")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE",
                   help="describe or correct the model's metadata (as detect's --meta)")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = QuantizeOptions(args.model, args.calib, args.out, args.fp16, args.uint8_input, args.holdout, args.conf,
                              args.iou, args.min_agreement, args.keep_failed, args.bench_runs, args.progress,
                              parse_meta(args.meta))
    report = quantize(options)
    print("\n".join(report.lines()))
    return refusals(report, "quantize", args.keep_failed)
