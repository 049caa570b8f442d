"""`edgepipe export`: a checkpoint or zoo model to ONNX, with its metadata, parity check and variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgepipe.postprocess.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint or zoo model to ONNX (needs the train extra)")
    p.add_argument("source", help="runs/NAME/best.pt, or a zoo model name (see `edgepipe models`)")
    p.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size (zoo detectors)")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim")
    p.add_argument("--fp16", action="store_true", help="also write OUT.fp16.onnx")
    p.add_argument("--int8", action="store_true", help="also write OUT.int8.onnx (static QDQ, head kept fp32)")
    p.add_argument("--calib", type=int, default=64, help="calibration images for --int8 (default 64)")
    p.add_argument("--nms", action="store_true", help="also write OUT.nms.onnx: decode + NMS inside the graph")
    p.add_argument("--conf", type=float, default=0.25, help="--nms score threshold")
    p.add_argument("--iou", type=float, default=0.45, help="--nms IoU threshold")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |ORT - PyTorch| allowed (fp32)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgepipe.export.data.samples import sample_frames
    from edgepipe.export.onnx.export import export_onnx, load_source
    from edgepipe.export.onnx.variants import max_relative_diff, to_fp16, to_int8
    from edgepipe.runtime.preprocessing import preprocess

    source = load_source(args.source, tuple(args.imgsz) if args.imgsz else None)
    if args.nms and source.meta.head != "yolo-course":
        raise UserError(f"--nms needs a course YOLO detector, but {source.name} is a {source.meta.task} model")
    main = export_onnx(source, args.out, args.opset, args.simplify, tolerance=args.tolerance)
    print(f"{main.path}: {main.size_mb:.2f} MB, opset {main.opset}, exported in {main.seconds:.1f} s, "
          f"parity max |ORT - PyTorch| = {main.max_abs_diff:.2e}")
    stem = args.out.with_suffix("")
    batch = preprocess(source.frames, source.meta.preprocess).batch
    if args.fp16:
        half = to_fp16(main.path, stem.with_suffix(".fp16.onnx"))
        print(f"{half}: {half.stat().st_size / 2**20:.2f} MB "
              f"({half.stat().st_size / main.path.stat().st_size:.2f}x), "
              f"parity max relative diff vs fp32 = {max_relative_diff(main.path, half, batch):.2e}")
    if args.int8:
        calib = preprocess(sample_frames(source.meta, args.calib, seed=1), source.meta.preprocess).batch
        q = to_int8(main.path, stem.with_suffix(".int8.onnx"), calib)
        print(f"{q}: {q.stat().st_size / 2**20:.2f} MB; measure its accuracy with `edgepipe eval {q}` "
              f"and its speed with `edgepipe bench {main.path} --compare {q}`")
    if args.nms:
        e2e = export_onnx(source, stem.with_suffix(".nms.onnx"), args.opset, args.simplify, nms=True,
                          conf=args.conf, iou=args.iou, tolerance=args.tolerance)
        print(f"{e2e.path}: decode + NonMaxSuppression inside the graph (output 'detections' (K, 7))")
    return 0
