"""`edgepipe detect --model M --source S`: real-time detection from a camera, video, stream, image or folder."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgepipe.apps.modelargs import add_model_args, load_model
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.detect")


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
    p.add_argument("--conf", type=float, default=0.25, help="score threshold (default 0.25)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    p.add_argument("--classes", nargs="+", default=[], metavar="CLASS", help="keep only these class ids or names")
    p.add_argument("--max-det", type=int, default=300, help="detections kept per frame (default 300)")
    p.add_argument("--agnostic-nms", action="store_true",
                   help="NMS across classes: one box per object even when two classes score high on it")
    add_model_args(p)
    p.add_argument("--show", action=argparse.BooleanOptionalAction, default=None,
                   help="show a window (default: when a display is present)")
    p.add_argument("--save", type=Path, help="annotated video (.mp4, .avi, .mkv), or a folder for image sources")
    p.add_argument("--jsonl", type=Path, help="write detections as JSON Lines, one line per frame")
    p.add_argument("--serve", metavar="HOST:PORT", help="live view in the browser, e.g. 127.0.0.1:8080")
    p.add_argument("--zone", action="append", default=[], metavar="[NAME=]X1,Y1,X2,Y2",
                   help="count detections whose center is inside this rectangle of the frame (repeatable)")
    p.add_argument("--line", action="append", default=[], metavar="[NAME=]X1,Y1,X2,Y2",
                   help="count tracked objects whose center crosses this segment, per direction (repeatable)")
    p.add_argument("--track", action="store_true",
                   help="give each detection a track id (in the JSON lines), stable while the object stays in view")
    p.add_argument("--retries", type=int, default=5, help="reconnect attempts for a lost camera or stream")
    p.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    p.add_argument("--loop", action="store_true", help="play a video file again and again (demos, soak runs)")
    p.add_argument("--summary", type=Path, help="write the run's summary as JSON")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    summary = detect(args)
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


def detect(args: argparse.Namespace, stop: threading.Event | None = None) -> Any:
    """Build the pipeline from the options and run it until the source ends or stop is set (SIGTERM and q in the
    window set it too). Returns apps.detect.app.Summary."""
    from edgepipe.apps.detect import app
    from edgepipe.apps.detect.lines import parse_line
    from edgepipe.apps.detect.pipeline import Detector, parse_classes
    from edgepipe.apps.detect.zones import parse_zone
    from edgepipe.apps.sources import Capture

    spec = source_spec(args)
    zones = [parse_zone(text, i) for i, text in enumerate(args.zone)]
    if len({z.name for z in zones}) != len(zones):
        raise UserError(f"--zone names must differ, but got {[z.name for z in zones]}")
    lines = [parse_line(text, i) for i, text in enumerate(args.line)]
    if len({line.name for line in lines}) != len(lines):
        raise UserError(f"--line names must differ, but got {[line.name for line in lines]}")
    model = load_model(args.model, args)
    classes = parse_classes(args.classes, model.meta.class_names) if args.classes else []
    detector = Detector(model, args.conf, args.iou, args.max_det, classes, args.agnostic_nms)
    check_outputs(args, spec.kind)
    stop = stop or threading.Event()
    capture = Capture(spec, prepare=detector.prepare, retries=args.retries, loop=args.loop).open()
    try:
        worker = make_sinks(args, spec.kind == "images", capture.fps, stop)
    except BaseException:
        capture.close()
        raise
    log.info("detecting in %s with %s on %s", spec.describe(), Path(model.name).name, model.providers[0])
    with stop_on_sigterm(stop):
        return app.run(capture, detector, worker, stop, args.max_frames, zones, lines, args.track)


def source_spec(args: argparse.Namespace) -> Any:
    """The --source the options name (apps.sources.SourceSpec), after checking --max-frames and --retries."""
    from edgepipe.apps.sources import parse_source

    if args.max_frames < 0 or args.retries < 0:
        raise UserError(f"--max-frames and --retries must be >= 0, but got {args.max_frames} and {args.retries}")
    return parse_source(args.source)


def check_outputs(args: argparse.Namespace, kind: str) -> None:
    """Every output path writable, before the capture starts."""
    from edgepipe.apps.detect.sinks import VIDEO_CODECS, check_writable

    images = kind == "images"
    if args.jsonl:
        check_writable(args.jsonl, "--jsonl")
    if args.save:
        as_video = args.save.suffix.lower() in VIDEO_CODECS
        if not images and not as_video:
            raise UserError(f"--save must end in one of {', '.join(VIDEO_CODECS)} for a {kind} source, but got "
                             f"{args.save.name!r}")
        check_writable(args.save, "--save", folder=images and not as_video)


def make_sinks(args: argparse.Namespace, images: bool, fps: float, stop: threading.Event) -> Any:
    """The sinks the options ask for, in a SinkWorker (apps.detect.sinks); q in the window sets stop."""
    from edgepipe.apps.detect.sinks import VIDEO_CODECS, ImageSink, JsonlSink, SinkWorker, VideoSink, screen_sinks

    sinks: list[Any] = []
    if args.jsonl:
        sinks.append(JsonlSink(args.jsonl))
    if args.save:
        as_video = not images or args.save.suffix.lower() in VIDEO_CODECS
        sinks.append(VideoSink(args.save, fps if not images else 2.0) if as_video else ImageSink(args.save))
    sinks += screen_sinks(args.serve, args.show, f"edgepipe detect: {args.model.name}", stop)
    return SinkWorker(sinks)


@contextmanager
def stop_on_sigterm(stop: threading.Event):
    """SIGTERM sets stop (the run ends cleanly, outputs flushed) while inside; the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
