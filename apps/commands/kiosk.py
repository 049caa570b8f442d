"""`edgepipe kiosk --source 0`: the face-check kiosk loop with its web page, window, video and audit log."""

from __future__ import annotations

import argparse
import json
import logging
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgepipe.apps.modelargs import add_model_args
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.kiosk")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kiosk", help="the face-check kiosk: welcome enrolled people at a camera",
                       description="Detect, crop, embed and identify the face in front of the camera; decide once "
                       "per visit (Welcome, NAME / Unknown person / Step closer) and log each decision.")
    p.add_argument("--source", default="0", help="camera index (default 0), /dev/videoN, video file or stream URL")
    p.add_argument("--gallery", type=Path, default=Path("faces.db"), help="the SQLite gallery (default faces.db)")
    p.add_argument("--detector", type=Path, required=True, help="the face detector .onnx")
    p.add_argument("--encoder", type=Path, required=True, help="the face encoder .onnx")
    add_model_args(p, "detector")
    add_model_args(p, "encoder")
    p.add_argument("--conf", type=float, default=0.5, help="face detector score threshold (default 0.5)")
    p.add_argument("--margin", type=float, default=0.0, help="crop margin: share of the face box added (default 0)")
    p.add_argument("--min-face", type=float, default=80.0,
                   help="faces whose detected box is smaller (px) get 'Step closer' (default 80)")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the gallery's calibrated one)")
    p.add_argument("--reencode", action="store_true",
                   help="the gallery was enrolled with another encoder: re-embed its stored face crops first")
    p.add_argument("--confirm", type=int, default=3, help="frames the same identity must win in a row (default 3)")
    p.add_argument("--cooldown", type=float, default=2.0,
                   help="seconds without a face that end a visit (default 2): one decision per visit")
    p.add_argument("--serve", metavar="HOST:PORT", help="the kiosk page, e.g. 127.0.0.1:8080")
    p.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                   help="show a window (default: when a display is present)")
    p.add_argument("--save", type=Path, help="write the annotated video (.mp4, .avi, .mkv)")
    p.add_argument("--retries", type=int, default=5, help="reconnect attempts for a lost camera or stream")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    p.add_argument("--loop", action="store_true", help="play a video file again and again (demos, soak runs)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = kiosk(args)
    if args.json:
        print(json.dumps(asdict(summary)))
    else:
        print("\n".join(summary.lines()))
    return 0


def kiosk(args: argparse.Namespace, stop: threading.Event | None = None) -> Any:
    """Build the kiosk from the options and run it until the source ends or stop is set (SIGTERM and q in the
    window set it too). Returns apps.face.kiosk.KioskSummary."""
    from edgepipe.apps.commands.detect import source_spec, stop_on_sigterm
    from edgepipe.apps.commands.face import build_analyzer, decision_threshold, open_gallery
    from edgepipe.apps.detect.sinks import SinkWorker, VideoSink, check_writable, screen_sinks
    from edgepipe.apps.face.kiosk import Decider, run
    from edgepipe.apps.sources import Capture

    spec = source_spec(args)
    if spec.kind == "images":
        raise UserError(f"the kiosk reads a camera, stream or video, but got {spec.describe()}: use "
                         "`edgepipe face identify --image FILE` for photos")
    analyzer = build_analyzer(args)
    decider = Decider(args.confirm, args.cooldown)
    db = open_gallery(args, analyzer.encoder, create=False)
    try:
        threshold, where = decision_threshold(args, db, analyzer.encoder)
        log.info("decision threshold %.4f (%s)", threshold, where)
        if not db.people():
            log.warning("gallery %s is empty: everyone will be 'Unknown person'", args.gallery)
        if args.save:
            check_writable(args.save, "--save")
        capture = Capture(spec, prepare=analyzer.detector.prepare, retries=args.retries, loop=args.loop).open()
        stop = stop or threading.Event()
        try:
            sinks: list[Any] = [VideoSink(args.save, capture.fps)] if args.save else []
            sinks += screen_sinks(args.serve, args.show, "edgepipe kiosk", stop)
        except BaseException:
            capture.close()
            raise
        with stop_on_sigterm(stop):
            return run(capture, analyzer, db, threshold, decider, SinkWorker(sinks), stop, str(args.source),
                       args.max_frames)
    finally:
        db.close()

