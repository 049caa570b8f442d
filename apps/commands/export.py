"""`edgepipe export`: a checkpoint or zoo model to ONNX, with its metadata, parity check and variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgepipe.apps.commands.common import options_from_args, refusals


def register(sub: argparse._SubParsersAction) -> None:
    from edgepipe.export.options import SPLITS, ExportOptions  # no torch: the defaults are defined there, once

    p = sub.add_parser("export", help="export a checkpoint or zoo model to ONNX (needs the train extra)")
    p.add_argument("source", help="runs/NAME/best.pt, or a zoo model name (see `edgepipe models`)")
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=ExportOptions.opset, help="ONNX opset (default %(default)s)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"),
                   help="input size (zoo detectors; the --conv file's metadata)")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    p.add_argument("--fp16", action="store_true", help="also write OUT.fp16.onnx")
    p.add_argument("--int8", action="store_true", help="also write OUT.int8.onnx (static QDQ, head kept fp32)")
    p.add_argument("--calib", type=int, default=ExportOptions.calib,
                   help="calibration images for --int8 (default %(default)s)")
    p.add_argument("--nms", action="store_true", help="also write OUT.nms.onnx: decode + NMS inside the graph")
    p.add_argument("--conf", type=float, default=ExportOptions.conf, help="--nms score threshold (default %(default)s)")
    p.add_argument("--iou", type=float, default=ExportOptions.iou, help="--nms IoU threshold (default %(default)s)")
    p.add_argument("--uint8-input", action="store_true",
                   help="also write OUT.uint8.onnx: takes the resized uint8 BGR frames (B, H, W, C) and normalizes "
                   "them inside the graph")
    p.add_argument("--tolerance", type=float, default=ExportOptions.tolerance,
                   help="max |ORT - PyTorch| allowed (fp32; default %(default)s)")
    p.add_argument("--conv", action="store_true", help="also write OUT.conv.onnx: a window classifier's "
                   "convolutional form (its FC layers as convolutions: every window of any image in one pass)")
    p.add_argument("--fp16-tolerance", type=float, default=ExportOptions.fp16_tolerance,
                   help="max |fp16 - fp32| / max |fp32| allowed (default %(default)s)")
    p.add_argument("--uint8-tolerance", type=float, default=ExportOptions.uint8_tolerance,
                   help="max |uint8-input - fp32| allowed (default %(default)s)")
    p.add_argument("--max-drop", type=float, default=ExportOptions.max_drop,
                   help="a variant whose mAP@0.5, accuracy or ROC AUC drops more than this below fp32's is not "
                   "written (default %(default)s)")
    p.add_argument("--keep-failed", action="store_true",
                   help="write the variants over their budget too (marked in the report), and exit 0")
    p.add_argument("--split", default=ExportOptions.split, choices=SPLITS,
                   help="the held-out split every file is evaluated on (default %(default)s)")
    p.add_argument("--data", type=Path, default=ExportOptions.data,
                   help="where generated data sets live (default: %(default)s)")
    p.add_argument("--bench-runs", type=int, default=ExportOptions.bench_runs,
                   help="interleaved timed runs per file for the report's p50 latency (default %(default)s)")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgepipe.export.onnx.pipeline import export_model
    from edgepipe.export.options import ExportOptions

    report = export_model(options_from_args(ExportOptions, args))
    print("\n".join(report.lines()))
    return refusals(report, "export", args.keep_failed)
