"""`edgepipe detect --model M --source S`: real-time detection from a camera, video, stream, image or folder."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from edgepipe.apps.commands.common import (
    add_model_args,
    add_publish_args,
    add_stream_args,
    model_options,
    publish_options,
    stream_options,
)
from edgepipe.apps.detect.lines import parse_line
from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.detect.zones import parse_zone


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="detect objects in a camera, video, stream, image or folder of images",
                       description="Detect objects with a detection ONNX model; write JSON Lines, an annotated video "
                       "or images, show a window, or serve a live view to the browser.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="a detection .onnx (edgepipe or Ultralytics export)")
    p.add_argument("--source", required=True,
                   help="camera index (0), /dev/videoN, video file, image, folder, glob ('imgs/*.jpg') or stream URL")
    p.add_argument("--conf", type=float, default=DetectOptions.conf,
                   help="score threshold (default %(default)s)")
    p.add_argument("--iou", type=float, default=DetectOptions.iou,
                   help="NMS IoU threshold (default %(default)s)")
    p.add_argument("--classes", nargs="+", default=[], metavar="CLASS", help="keep only these class ids or names")
    p.add_argument("--max-det", type=int, default=DetectOptions.max_det,
                   help="detections kept per frame (default %(default)s)")
    p.add_argument("--agnostic-nms", action="store_true",
                   help="NMS across classes: one box per object even when two classes score high on it")
    add_model_args(p)
    p.add_argument("--save", type=Path, help="annotated video (.mp4, .avi, .mkv), or a folder for image sources")
    p.add_argument("--jsonl", type=Path, help="write detections as JSON Lines, one line per frame")
    p.add_argument("--zone", action="append", default=[], metavar="[NAME=]X1,Y1,X2,Y2",
                   help="count detections whose center is inside this rectangle of the frame (repeatable)")
    p.add_argument("--line", action="append", default=[], metavar="[NAME=]X1,Y1,X2,Y2",
                   help="count tracked objects whose center crosses this segment, per direction (repeatable)")
    p.add_argument("--track", action="store_true",
                   help="give each detection a track id (in the JSON lines), stable while the object stays in view")
    add_stream_args(p)
    add_publish_args(p)
    p.add_argument("--summary", type=Path, help="write the run's summary as JSON")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def options(args: argparse.Namespace) -> DetectOptions:
    """The DetectOptions of the parsed command line."""
    return DetectOptions(
        model_options(args.model, args), stream_options(args), args.conf, args.iou, tuple(args.classes),
        args.max_det, args.agnostic_nms, args.save, args.jsonl,
        tuple(parse_zone(text, i) for i, text in enumerate(args.zone)),
        tuple(parse_line(text, i) for i, text in enumerate(args.line)), args.track, publish_options(args))


def run(args: argparse.Namespace) -> int:
    summary = detect(options(args))
    if args.summary:
        args.summary.write_text(json.dumps(asdict(summary), indent=1))
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print("\n".join(summary.lines()))
        for path in (args.save, args.jsonl):
            if path:
                print(f"wrote {path}")
    return 0
