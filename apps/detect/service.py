"""detect(DetectOptions): real-time detection from a camera, video, stream, image or folder, callable from Python."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from edgepipe.apps.detect import app
from edgepipe.apps.detect.lines import Line
from edgepipe.apps.detect.pipeline import Detector, parse_classes
from edgepipe.apps.detect.zones import Zone
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.events import EventSink, PublishOptions
from edgepipe.apps.stream.loop import StreamOptions, stop_on_sigterm
from edgepipe.apps.stream.sinks import (
    ImageSink,
    JsonlSink,
    Sink,
    SinkWorker,
    VideoSink,
    check_writable,
    screen_sinks,
)
from edgepipe.apps.stream.sources import Capture
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.video import VIDEO_CODECS

log = logging.getLogger("edgepipe.detect")

IMAGES_FPS = 2.0  # frame rate of the video written for image sources


@dataclass(frozen=True)
class DetectOptions:
    """A detection run.

    model: the detection .onnx and how to run it. stream: the source, reconnects, frame limit, loop, browser view,
    window. conf, iou: score and NMS IoU thresholds. classes: class ids or names to keep (empty: all). max_det:
    detections kept per frame. agnostic_nms: NMS across classes too. save: an annotated video (.mp4, .avi, .mkv),
    or a folder for image sources. jsonl: detections as JSON Lines, one line per frame. zones: rectangles whose
    detections are counted per frame. lines: segments whose crossings by tracked objects are counted. track: give
    each detection a track id (lines imply it). publish: events to an MQTT broker (with zones, it implies tracking:
    zone enter and leave are told per tracked object).
    """

    model: ModelOptions
    stream: StreamOptions
    conf: float = 0.25
    iou: float = 0.45
    classes: tuple[str, ...] = ()
    max_det: int = 300
    agnostic_nms: bool = False
    save: Path | None = None
    jsonl: Path | None = None
    zones: tuple[Zone, ...] = ()
    lines: tuple[Line, ...] = ()
    track: bool = False
    publish: PublishOptions | None = None

    def __post_init__(self) -> None:
        for what, named in (("--zone", self.zones), ("--line", self.lines)):
            names = [n.name for n in named]
            if len(set(names)) != len(names):
                raise UserError(f"{what} names must differ, but got {names}")


def detect(options: DetectOptions, stop: threading.Event | None = None) -> app.Summary:
    """Build the pipeline and run it until the source ends or stop is set (SIGTERM and q in the window set it
    too). Every output is checked before the first frame is read."""
    spec = options.stream.spec()
    model = options.model.load()
    classes = parse_classes(options.classes, model.meta.class_names) if options.classes else []
    detector = Detector(model, options.conf, options.iou, options.max_det, classes, options.agnostic_nms)
    images = spec.kind == "images"
    check_outputs(options, images, spec.kind)
    stop = stop or threading.Event()
    capture = Capture(spec, prepare=detector.prepare, retries=options.stream.retries,
                      loop=options.stream.loop).open()
    try:
        sinks = make_sinks(options, images, capture.fps, stop)
    except BaseException:
        capture.close()
        raise
    log.info("detecting in %s with %s on %s", spec.describe(), Path(model.name).name, model.providers[0])
    track = options.track or bool(options.publish and options.zones)
    with stop_on_sigterm(stop):
        summary = app.run(capture, detector, SinkWorker(sinks), stop, options.stream.max_frames, options.zones,
                          options.lines, track)
    published = [s.stats for s in sinks if isinstance(s, EventSink)]
    return replace(summary, published=published[0]) if published else summary


def check_outputs(options: DetectOptions, images: bool, kind: str) -> None:
    """Every output path writable, before the capture starts."""
    if options.jsonl:
        check_writable(options.jsonl, "--jsonl")
    if options.save:
        as_video = options.save.suffix.lower() in VIDEO_CODECS
        if not images and not as_video:
            raise UserError(f"--save must end in one of {', '.join(VIDEO_CODECS)} for a {kind} source, but got "
                            f"{options.save.name!r}")
        check_writable(options.save, "--save", folder=images and not as_video)


def make_sinks(options: DetectOptions, images: bool, fps: float, stop: threading.Event) -> list[Sink]:
    """The sinks the options ask for; q in the window sets stop. The broker is reached first (before any file is
    opened); the sinks made are closed when a later one fails (a busy port)."""
    sinks: list[Sink] = [EventSink(options.publish, options.stream.source)] if options.publish else []
    try:
        if options.jsonl:
            sinks.append(JsonlSink(options.jsonl))
        if options.save:
            as_video = not images or options.save.suffix.lower() in VIDEO_CODECS
            sinks.append(VideoSink(options.save, fps if not images else IMAGES_FPS) if as_video
                         else ImageSink(options.save))
        title = f"edgepipe detect: {options.model.path.name}"
        return sinks + screen_sinks(options.stream.serve, options.stream.show, title, stop)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
