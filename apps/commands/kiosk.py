"""`edgepipe kiosk --source 0`: the face-check kiosk loop with its web page, window, video and audit log."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from edgepipe.apps.commands.common import (
    add_face_model_args,
    add_gallery_args,
    add_publish_args,
    add_stream_args,
    face_models,
    finite,
    gallery_errors,
    publish_options,
    stream_options,
)
from edgepipe.apps.face.kiosk import CAMERA, KioskOptions, kiosk


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kiosk", help="the face-check kiosk: welcome enrolled people at a camera",
                       description="Detect, crop, embed and identify the face in front of the camera; decide once "
                       "per visit (Welcome, NAME / Unknown person / Step closer) and log each decision.")
    p.add_argument("--source", default=CAMERA,
                   help="camera index (default %(default)s), /dev/videoN, video file or stream URL")
    add_gallery_args(p, threshold=True)
    add_face_model_args(p)
    p.add_argument("--confirm", type=int, default=KioskOptions.confirm,
                   help="frames the same identity must win in a row (default %(default)s)")
    p.add_argument("--cooldown", type=finite, default=KioskOptions.cooldown,
                   help="seconds without a face that end a visit (default %(default)s): one decision per visit")
    p.add_argument("--save", type=Path, help="write the annotated video (.mp4, .avi, .mkv)")
    add_stream_args(p)
    add_publish_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=gallery_errors(run))


def options(args: argparse.Namespace) -> KioskOptions:
    """The KioskOptions of the parsed command line."""
    return KioskOptions(face_models(args), stream_options(args, args.source), args.gallery, args.threshold,
                        args.reencode, args.confirm, args.cooldown, args.save, publish_options(args))


def run(args: argparse.Namespace) -> int:
    summary = kiosk(options(args))
    print(json.dumps(asdict(summary)) if args.json else "\n".join(summary.lines()))
    return 0
