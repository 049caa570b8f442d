"""bench_pipeline(PipelineOptions): `edgepipe detect` on a source against bare session.run on the same frames, and
where the rest of a frame's time goes."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.apps.stream.sinks import Item, JsonlSink
from edgepipe.apps.stream.sources import Capture, Frame
from edgepipe.apps.stream.specs import parse_source
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.progress import Progress
from edgepipe.runtime.session import Model

STAGES = ("read", "preprocess", "model", "postprocess", "write")  # a frame's steps, each timed alone on every frame


@dataclass(frozen=True)
class PipelineOptions:
    """model: the detector and how to run it. source: a video file, an image folder or a glob (a file source: each
    round must see the same frames). frames: how many of its frames (0: all). rounds: bare and pipeline runs,
    interleaved. conf, iou: as detect's."""

    model: ModelOptions
    source: str
    frames: int = 150
    rounds: int = 3
    conf: float = DetectOptions.conf
    iou: float = DetectOptions.iou

    def __post_init__(self) -> None:
        if self.frames < 0 or self.rounds < 1:
            raise UserError(f"--frames must be >= 0 and --rounds >= 1, but got {self.frames} and {self.rounds}")


@dataclass(frozen=True)
class PipelineReport:
    """FPS medians over the rounds: bare (session.run on frames read and preprocessed beforehand, at the size the
    pipeline runs: the ceiling), exported (the same at the file's own size: differs from bare when a fixed-size
    YOLOv8 runs re-targeted to the frames' aspect) and pipeline (`edgepipe detect --jsonl` on the source: capture,
    preprocessing, model, decoding and the sink in their threads); sizes: (H, W) the pipeline runs and the file's
    own; stages: median ms per frame of each step of STAGES done alone, one frame at a time (write: the frame's
    --jsonl line); detections: their median count per frame; conf, iou: the thresholds used."""

    provider: str
    frames: int
    rounds: int
    bare_fps: float
    exported_fps: float
    pipeline_fps: float
    stages: dict[str, float]
    sizes: tuple[tuple[int, int], tuple[int, int]]
    detections: float
    conf: float
    iou: float

    @property
    def ratio(self) -> float:
        """pipeline / bare: 1.0 is the ceiling."""
        return self.pipeline_fps / self.bare_fps

    def lines(self) -> list[str]:
        serial = sum(self.stages.values())
        parts = ", ".join(f"{name} {ms:.2f} ms" for name, ms in self.stages.items())
        (h, w), (h0, w0) = self.sizes
        exported = [] if self.sizes[0] == self.sizes[1] else [
            f"  bare at {h0}x{w0}   {self.exported_fps:8.1f} FPS  (the file at its own size; the pipeline runs it "
            f"re-targeted to {h}x{w}, --no-rect to keep it: {self.pipeline_fps / self.exported_fps:.2f}x this)"]
        return [
            f"{self.frames} frames, medians of {self.rounds} interleaved round(s) on {self.provider}, conf "
            f"{self.conf:g}, iou {self.iou:g}, {self.detections:.0f} detections per frame:",
            f"  bare session.run  {self.bare_fps:8.1f} FPS  (at {h}x{w}, frames read and preprocessed beforehand: "
            "the ceiling)",
            *exported,
            f"  edgepipe detect   {self.pipeline_fps:8.1f} FPS  ({self.ratio:.2f}x bare)",
            f"  one frame's steps alone: {parts}; {serial:.2f} ms in all, {1e3 / serial:.1f} FPS done one after "
            "another",
            f"  the pipeline overlaps them in threads; what it loses to bare is the time the other steps take from "
            f"the model's threads ({1e3 / self.pipeline_fps - self.stages['model']:+.2f} ms per frame)",
        ]

    def as_dict(self) -> dict:
        return {"provider": self.provider, "frames": self.frames, "rounds": self.rounds, "conf": self.conf,
                "iou": self.iou, "detections": self.detections,
                "input_size": list(self.sizes[0]), "exported_size": list(self.sizes[1]),
                "bare_fps": round(self.bare_fps, 2), "exported_fps": round(self.exported_fps, 2),
                "pipeline_fps": round(self.pipeline_fps, 2),
                "pipeline_over_bare": round(self.ratio, 4), "stages_ms": {k: round(v, 4) for k, v in
                                                                          self.stages.items()}}


def bench_pipeline(options: PipelineOptions, progress: bool = True) -> PipelineReport:
    """Read the source's frames once (timing the reads), time each step alone on every frame, then run bare and
    the detect pipeline in turn, options.rounds times."""
    spec = parse_source(options.source)
    if spec.live:
        raise UserError(f"--pipeline needs a file source (a video, an image folder or a glob), so that every round "
                        f"sees the same frames, but got {options.source!r}")
    images, read_ms = _read(spec, options.frames)
    model = options.model.load()
    detector = Detector(model, options.conf, options.iou, rect=options.model.rect)
    stages, detections = _stage_times(detector, images)
    ready = [detector.prepare(image).batch for image in images]
    own = [preprocess(image, model.spec).batch for image in images] if detector.rect else ready
    sizes = ((ready[0].shape[2], ready[0].shape[3]), (own[0].shape[2], own[0].shape[3]))
    bare, exported, piped = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgepipe-bench-") as tmp, \
            Progress(options.rounds, "pipeline rounds", progress) as bar:
        for _ in range(options.rounds):
            bare.append(_bare_fps(detector.model_for(ready[0]), ready))
            exported.append(_bare_fps(model, own) if detector.rect else bare[-1])
            piped.append(_pipeline_fps(options, Path(tmp) / "detections.jsonl", len(images)))
            bar.update()
    return PipelineReport(model.providers[0], len(images), options.rounds, statistics.median(bare),
                          statistics.median(exported), statistics.median(piped), {"read": read_ms, **stages}, sizes,
                          detections, options.conf, options.iou)


def _read(spec, limit: int) -> tuple[list[np.ndarray], float]:
    """Up to limit frames (0: all) of a file source, and the median ms between two frames handed over by its
    capture thread (decoding)."""
    images, gaps = [], []
    with Capture(spec) as capture:
        t0 = time.perf_counter()
        for frame in capture.frames():
            now = time.perf_counter()
            images.append(frame.image)
            gaps.append((now - t0) * 1e3)
            t0 = now
            if limit and len(images) >= limit:
                break
    if not images:
        raise UserError(f"{spec.describe()} gave no frame: give a video or images the pipeline can read")
    return images, float(np.median(gaps))


def _stage_times(detector: Detector, images: list[np.ndarray]) -> tuple[dict[str, float], float]:
    """Median ms per frame of preprocessing, the model (bare session.run), decoding and the frame's --jsonl line,
    each frame alone; and the median count of detections per frame."""
    times: dict[str, list[float]] = {name: [] for name in STAGES[1:]}
    counts = []
    with tempfile.TemporaryDirectory(prefix="edgepipe-bench-") as tmp:
        sink = JsonlSink(Path(tmp) / "stages.jsonl")
        for index, image in enumerate(images):
            t0 = time.perf_counter()
            prepared = detector.prepare(image)
            t1 = time.perf_counter()
            raw = detector.forward(prepared.batch)
            t2 = time.perf_counter()
            det = detector.decode(raw, prepared.transforms)[0]
            t3 = time.perf_counter()
            sink.write(Item(Frame(index, 0.0, image), det, "", 0.0, 0.0, {}), None)
            t4 = time.perf_counter()
            for name, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                times[name].append(seconds * 1e3)
            counts.append(len(det))
        sink.close()
    return {name: float(np.median(t)) for name, t in times.items()}, float(np.median(counts))


def _bare_fps(model: Model, ready: list[np.ndarray]) -> float:
    """session.run alone on frames preprocessed beforehand, in frames per second."""
    session, name = model.session, model.inputs[0].name
    t0 = time.perf_counter()
    for x in ready:
        session.run(None, {name: x})
    return len(ready) / (time.perf_counter() - t0)


def _pipeline_fps(options: PipelineOptions, jsonl: Path, frames: int) -> float:
    """`edgepipe detect --source SOURCE --jsonl FILE --max-frames N` in this process, in frames per second."""
    summary = detect(DetectOptions(options.model, StreamOptions(options.source, max_frames=frames, show=False),
                                   conf=options.conf, iou=options.iou, jsonl=jsonl))
    return summary.fps
