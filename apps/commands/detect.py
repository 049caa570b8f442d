"""`edgepipe detect --model M --source S`: real-time detection from a camera, video, stream, image or folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgepipe.apps.commands.common import (
    add_model_args,
    add_publish_args,
    add_stream_args,
    finite,
    model_options,
    publish_options,
    stream_options,
)
from edgepipe.apps.detect.lines import parse_line
from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.detect.zones import parse_zone
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="detect objects in a camera, video, stream, image or folder of images",
                       description="Detect objects with a detection ONNX model; write JSON Lines, an annotated video "
                       "or images, show a window, or serve a live view to the browser.")
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, required=True, help="a detection .onnx (edgepipe or Ultralytics export)")
    p.add_argument("--source", action="append", default=[], metavar="[NAME=]SOURCE",
                   help="camera index (0), /dev/videoN, video file, image, folder, glob ('imgs/*.jpg') or stream URL; "
                   "repeat it for several sources in one run (one model, batched), optionally named NAME=SOURCE")
    p.add_argument("--sources", type=Path, metavar="FILE",
                   help="a file of sources, one a line ([NAME=]SOURCE; blank lines and # comments skipped)")
    p.add_argument("--conf", type=finite, default=DetectOptions.conf,
                   help="score threshold (default %(default)s)")
    p.add_argument("--iou", type=finite, default=DetectOptions.iou,
                   help="NMS IoU threshold (default %(default)s)")
    p.add_argument("--classes", nargs="+", default=[], metavar="CLASS", help="keep only these class ids or names")
    p.add_argument("--max-det", type=int, default=DetectOptions.max_det,
                   help="detections kept per frame (default %(default)s)")
    p.add_argument("--agnostic-nms", action="store_true",
                   help="NMS across classes: one box per object even when two classes score high on it")
    add_model_args(p)
    p.add_argument("--save", type=Path, help="annotated video (.mp4, .avi, .mkv), or a folder for image sources")
    p.add_argument("--jsonl", type=Path, help="write detections as JSON Lines, one line per frame")
    p.add_argument("--zone", action="append", default=[], metavar="[SOURCE:][NAME=]X1,Y1,X2,Y2",
                   help="count detections whose center is inside this rectangle of the frame (repeatable; with "
                   "SOURCE: for that source only)")
    p.add_argument("--line", action="append", default=[], metavar="[SOURCE:][NAME=]X1,Y1,X2,Y2",
                   help="count tracked objects whose center crosses this segment, per direction (repeatable; with "
                   "SOURCE: for that source only)")
    p.add_argument("--track", action="store_true",
                   help="give each detection a track id (in the JSON lines), stable while the object stays in view")
    p.add_argument("--batch", type=int, default=DetectOptions.batch,
                   help="frames of several sources run as one batch, up to this many (default: one per source)")
    p.add_argument("--batch-wait-ms", type=finite, default=DetectOptions.batch_wait_ms,
                   help="how long a batch waits for the sources not ready yet (default %(default)s ms)")
    add_stream_args(p)
    add_publish_args(p)
    p.add_argument("--summary", type=Path, help="write the run's summary as JSON")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def options(args: argparse.Namespace) -> DetectOptions:
    """The DetectOptions of the parsed command line."""
    return DetectOptions(
        model_options(args.model, args), stream_options(args, sources(args)), args.conf, args.iou,
        tuple(args.classes), args.max_det, args.agnostic_nms, args.save, args.jsonl,
        tuple(parse_zone(text, i) for i, text in enumerate(args.zone)),
        tuple(parse_line(text, i) for i, text in enumerate(args.line)), args.track, args.batch, args.batch_wait_ms,
        args.summary, (Input("--sources", args.sources),) if args.sources else (), publish_options(args))


def sources(args: argparse.Namespace) -> list[str]:
    """--source values, then the lines of --sources FILE; at least one."""
    found = list(args.source)
    if args.sources:
        if not args.sources.is_file():
            raise UserError(f"--sources file {args.sources} not found: give a file with one source a line")
        lines = args.sources.read_text(encoding="utf-8").splitlines()
        found += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not found:
        raise UserError("no source: give --source SOURCE (repeatable) or --sources FILE")
    return found


def run(args: argparse.Namespace) -> int:
    summary = detect(options(args))
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print("\n".join(summary.lines()))
        for path in (args.save, args.jsonl):
            if path:
                print(f"wrote {path}")
    if summary.error:
        print(f"edgepipe detect: error: {summary.error}", file=sys.stderr)
        return 1
    if summary.lost:
        print(f"edgepipe detect: lost for good: {', '.join(summary.lost)} (the other sources ran to the end)",
              file=sys.stderr)
        return 1
    return 0
