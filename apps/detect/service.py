"""detect(DetectOptions): real-time detection from cameras, videos, streams, images or folders, callable from Python."""

from __future__ import annotations

import json
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
    BySource,
    ImageSink,
    JsonlSink,
    Sink,
    SinkWorker,
    VideoSink,
    close_sinks,
    screen_sinks,
)
from edgepipe.apps.stream.sources import Capture
from edgepipe.apps.stream.specs import SourceSpec, parse_source
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input, Output, write_atomic
from edgepipe.runtime.files import check_outputs as check_files
from edgepipe.runtime.video import VIDEO_CODECS

log = logging.getLogger("edgepipe.detect")

IMAGES_FPS = 2.0  # frame rate of the video written for image sources
SOURCE_VIDEO = ".mp4"  # each source's annotated video in a run with several: SAVE/NAME.mp4


@dataclass(frozen=True)
class DetectOptions:
    """A detection run over one source or several, with one model.

    model: the detection .onnx and how to run it. stream: the sources (NAME=SOURCE to name them), reconnects,
    frame limit, loop, browser view, window. conf, iou: score and NMS IoU thresholds. classes: class ids or names
    to keep (empty: all). max_det: detections kept per frame. agnostic_nms: NMS across classes too. save: an
    annotated video (.mp4, .avi, .mkv) or, for image sources, a folder; with several sources a folder holding
    NAME.mp4 per video source and NAME/ per image source. jsonl: detections as JSON Lines, one line per frame (with
    the source's name when it has one). zones: rectangles whose detections are counted per frame. lines: segments
    whose crossings by tracked objects are counted; zones and lines with a source apply to it only. track: give
    each detection a track id (lines imply it). batch: frames of several sources run together (0: one per
    source). batch_wait_ms: how long a batch waits for the sources not ready yet. summary: the run's summary as
    JSON, written at the end (also when an output fails). inputs: other files the caller read (a --sources file):
    no output may replace them, nor the model, nor a source. publish: events to an MQTT broker, each source a
    camera (with zones, it implies tracking: zone enter and leave are told per tracked object).
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
    batch: int = 0
    batch_wait_ms: float = app.BATCH_WAIT_MS
    summary: Path | None = None
    inputs: tuple[Input, ...] = ()
    publish: PublishOptions | None = None

    def __post_init__(self) -> None:
        if self.batch < 0 or not self.batch_wait_ms >= 0:
            raise UserError(f"--batch and --batch-wait-ms must be >= 0, but got {self.batch} and "
                            f"{self.batch_wait_ms}")
        names = [name for name, _ in self.stream.named()]
        for what, named in (("--zone", self.zones), ("--line", self.lines)):
            unknown = sorted({n.source for n in named if n.source and n.source not in names})
            if unknown:
                raise UserError(f"{what} names source(s) {unknown}, but the sources are {names}: use "
                                f"SOURCE:NAME=X1,Y1,X2,Y2 with one of them")
            for source in names:
                mine = [n.name for n in named if n.source in ("", source)]
                if len(set(mine)) != len(mine):
                    raise UserError(f"{what} names must differ for each source, but got {mine}")


def detect(options: DetectOptions, stop: threading.Event | None = None) -> app.RunSummary:
    """Build the pipeline and run it until every source ends or stop is set (SIGTERM and q in a window set it
    too). Every source is opened and every output checked before the first frame is read."""
    sources = [(name, parse_source(text)) for name, text in options.stream.named()]
    model = options.model.load()
    classes = parse_classes(options.classes, model.meta.class_names) if options.classes else []
    detector = Detector(model, options.conf, options.iou, options.max_det, classes, options.agnostic_nms,
                        options.model.rect)
    check_outputs(options, sources)
    stop = stop or threading.Event()
    captures: list[tuple[str, Capture]] = []
    try:
        for name, spec in sources:
            capture = Capture(spec, prepare=detector.prepare, retries=options.stream.retries,
                              loop=options.stream.loop)
            captures.append((name, capture.open()))
        worker = SinkWorker(make_sinks(options, captures, stop))
    except BaseException:
        for _, capture in captures:
            capture.close()
        raise
    for name, capture in captures:
        log.info("detecting in %s%s with %s on %s", f"{name}: " if name else "", capture.spec.describe(),
                 Path(model.name).name, model.providers[0])
    track = options.track or bool(options.publish and options.zones)
    with stop_on_sigterm(stop):
        summary = app.run(captures, detector, worker, stop, options.stream.max_frames, options.zones, options.lines,
                          track, options.batch, options.batch_wait_ms)
    published = [s.stats for s in worker.sinks if isinstance(s, EventSink)]
    summary = replace(summary, published=published[0]) if published else summary
    if options.summary:
        write_atomic(options.summary, json.dumps(summary.as_dict(), indent=1).encode())
    return summary


def check_outputs(options: DetectOptions, sources: list[tuple[str, SourceSpec]]) -> None:
    """Every output writable and none of them an input (the model, a source, the caller's inputs) or another
    output, before the capture starts."""
    inputs = [*options.model.inputs("--model"), *options.inputs]
    inputs += [i for name, spec in sources for i in spec.inputs(f"--source {name}".strip())]
    outputs = [Output("--jsonl", options.jsonl), Output("--summary", options.summary)]
    if options.save:
        outputs.append(_save_output(options.save, sources))
    check_files(outputs, inputs)


def _save_output(save: Path, sources: list[tuple[str, SourceSpec]]) -> Output:
    """What --save writes: one source's annotated video, or folder of annotated images (the file names known); with
    several sources a folder of NAME.mp4 and NAME/ for each."""
    as_video = save.suffix.lower() in VIDEO_CODECS
    if len(sources) > 1:
        if as_video:
            raise UserError(f"--save takes a folder with several sources (each writes NAME{SOURCE_VIDEO} or NAME/ "
                            f"in it), but got the video file {save.name!r}")
        files = [f for name, spec in sources for f in _planned(_source_output(save, name, spec), spec)]
        return Output("--save", save, folder=True, files=tuple(files))
    spec = sources[0][1]
    if spec.kind != "images" and not as_video:
        raise UserError(f"--save must end in one of {', '.join(VIDEO_CODECS)} for a {spec.kind} source, but got "
                        f"{save.name!r}")
    if spec.kind == "images" and not as_video:
        return Output("--save", save, folder=True, files=tuple(_planned(save, spec)))
    return Output("--save", save)


def _planned(path: Path, spec: SourceSpec) -> list[Path]:
    """The files a source's annotated output writes at path: the video itself, or FOLDER/IMAGE per image."""
    if spec.kind == "images" and path.suffix.lower() not in VIDEO_CODECS:
        return [path / Path(p).name for p in spec.paths]
    return [path]


def make_sinks(options: DetectOptions, captures: list[tuple[str, Capture]], stop: threading.Event) -> list[Sink]:
    """The sinks the options ask for; q in a window sets stop. The broker is reached first (before any file is
    opened); the sinks made are closed when a later one fails (a busy port)."""
    sinks: list[Sink] = [EventSink(options.publish, dict(options.stream.named()))] if options.publish else []
    try:
        if options.jsonl:
            sinks.append(JsonlSink(options.jsonl))
        if options.save and len(captures) == 1:
            sinks.append(_save_sink(options.save, captures[0][1]))
        elif options.save:
            sinks.append(BySource({name: _save_sink(_source_output(options.save, name, capture.spec), capture)
                                   for name, capture in captures}))
        title = f"edgepipe detect: {options.model.path.name}"
        return sinks + screen_sinks(options.stream.serve, options.stream.show, title, stop,
                                    [name for name, _ in captures])
    except BaseException:
        close_sinks(sinks)
        raise


def _save_sink(path: Path, capture: Capture) -> Sink:
    """The annotated output of one source: a video (a folder of images, for image sources saved to a folder)."""
    images = capture.spec.kind == "images"
    if images and path.suffix.lower() not in VIDEO_CODECS:
        return ImageSink(path)
    return VideoSink(path, IMAGES_FPS if images else capture.fps)


def _source_output(folder: Path, name: str, spec: SourceSpec) -> Path:
    """Where a source of a run with several saves: FOLDER/NAME.mp4, or FOLDER/NAME/ for image sources."""
    return folder / name if spec.kind == "images" else folder / f"{name}{SOURCE_VIDEO}"
