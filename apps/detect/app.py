"""The detection app's loop: capture threads -> batched inference -> decode, tracking and counts -> sink thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.lines import Crossing, Line, LineCounter
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.detect.zones import Zone, ZoneChange, ZoneWatch, count_in_zones
from edgepipe.apps.stream.batching import Gatherer
from edgepipe.apps.stream.draw import ASCII_ARROWS, Mark
from edgepipe.apps.stream.loop import FpsMeter
from edgepipe.apps.stream.mqtt import PublishStats
from edgepipe.apps.stream.sinks import Event, Item, SinkWorker
from edgepipe.apps.stream.sources import Capture, Frame
from edgepipe.apps.stream.stage import Stage
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.track import IouTracker
from edgepipe.runtime.files import OutputError

log = logging.getLogger("edgepipe.detect")

BATCH_WAIT_MS = 5.0  # how long a batch waits for the sources not ready yet, by default
LOST = "lost"  # how a source lost for good ends, in its summary


@dataclass(frozen=True)
class Summary:
    """What a run did. counts: detections per class over the run; peak: most of a class in one frame;
    timeline: per second of source time, the most of each class seen in one frame then. fps: frames processed per
    wall-clock second. infer_ms / post_ms: medians per frame. stopped: why the run ended. zones: per --zone, the
    most detections inside it in one frame ("peak") and the frames with at least one ("frames"). crossings: per
    --line, the tracked objects that crossed it per direction, and per direction and class ("by_class"). name: the
    source's name in a run with several ("" for the only, unnamed one). undecoded: a video's frames its decoder
    could not give (a damaged or cut file)."""

    source: str
    frames: int
    dropped: int
    skipped: tuple[str, ...]
    reconnects: int
    seconds: float
    fps: float
    infer_ms: float
    post_ms: float
    counts: dict[str, int]
    peak: dict[str, int]
    timeline: list[dict] = field(default_factory=list)
    stopped: str = "end of source"
    zones: dict[str, dict[str, int]] = field(default_factory=dict)
    crossings: dict[str, dict] = field(default_factory=dict)
    name: str = ""
    undecoded: int = 0

    def lines(self) -> list[str]:
        """The summary as printed at the end of a run."""
        out = [f"{self.frames} frames from {self.source} in {self.seconds:.1f} s: {self.fps:.1f} FPS, model "
               f"{self.infer_ms:.2f} ms + postprocess {self.post_ms:.2f} ms per frame (medians); {self.stopped}"]
        if self.dropped:
            out.append(f"{self.dropped} frames dropped (the live source was faster than the model)")
        if self.reconnects:
            out.append(f"{self.reconnects} reconnect(s)")
        if self.undecoded:
            out.append(f"{self.undecoded} frame(s) of the video could not be decoded (the file is damaged or cut)")
        out += [f"skipped {s}" for s in self.skipped]
        for name, n in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            out.append(f"  {name:<12} {n:>7} detections, at most {self.peak[name]} in one frame")
        for name, z in self.zones.items():
            out.append(f"  zone {name}: at most {z['peak']} inside at once, occupied in {z['frames']} frames")
        for name, c in self.crossings.items():
            ways = ", ".join(f"{n} {d.replace('_', ' ')}" for d, n in c.items() if d != "by_class")
            out.append(f"  line {name}: {ways}")
        return out


class SourceRun:
    """One source of a run: its capture, its tracker, counting lines and zones, and what its summary counts."""

    def __init__(self, name: str, capture: Capture, zones: Sequence[Zone], lines: Sequence[Line], track: bool) -> None:
        self.name, self.capture = name, capture
        self.zones, self.lines = list(zones), list(lines)
        self.tracker = IouTracker() if track or lines else None
        self.crossing = LineCounter(lines, forget=self.tracker.max_age) if self.tracker and lines else None
        self.watch = ZoneWatch(zones, forget=self.tracker.max_age) if self.tracker and zones else None
        self.counts: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.timeline: dict[int, Counter[str]] = {}
        self.infer: list[float] = []
        self.post: list[float] = []
        self.zone_stats = {z.name: {"peak": 0, "frames": 0} for z in zones}
        self.meter = FpsMeter()
        self.taken = 0  # frames sent to the model
        self.stopped = ""
        self.t0 = self.t1 = time.perf_counter()

    def step(self, frame: Frame, det: Detections, infer_ms: float, post_ms: float) -> Item:
        """One frame's detections (frame pixels) -> tracked and counted, as the Item for the sinks."""
        fps = self.meter.tick()
        self.infer.append(infer_ms)
        self.post.append(post_ms)
        in_frame = Counter(det.class_name(int(c)) for c in det.class_ids)
        self.counts.update(in_frame)
        second = self.timeline.setdefault(int(frame.time), Counter())
        for name, n in in_frame.items():
            self.peak[name] = max(self.peak[name], n)
            second[name] = max(second[name], n)
        inside = count_in_zones(det, self.zones) if self.zones else {}
        for name, n in inside.items():
            self.zone_stats[name]["peak"] = max(self.zone_stats[name]["peak"], n)
            self.zone_stats[name]["frames"] += n > 0
        totals: dict[str, dict[str, int]] = {}
        events: list[Event] = []
        if self.tracker is not None:
            det = det.with_track_ids(self.tracker.update(det))
            classes = self.tracker.classes(det.track_ids)
            if self.crossing is not None:
                totals = self.crossing.update(det, det.track_ids, classes)
                events += [_line_event(c) for c in self.crossing.crossed]
            if self.watch is not None:
                events += [_zone_event(change) for change in self.watch.update(det, det.track_ids, classes)]
        marks = tuple(Mark(line.xyxy, _line_text(line.name, totals[line.name])) for line in self.lines) if totals \
            else ()
        return Item(frame, det, f"{fps:.1f} FPS  model {infer_ms:.1f} ms", fps, infer_ms + post_ms, dict(in_frame),
                    inside, totals, marks, source=self.name, events=tuple(events))

    def finish(self, why: str) -> None:
        """The source is done (why: it ended, was stopped, or was lost): its capture is closed, its time stops."""
        if not self.stopped:
            self.stopped, self.t1 = why, time.perf_counter()
            self.capture.close()

    def summary(self) -> Summary:
        stats, seconds = self.capture.stats, self.t1 - self.t0
        frames = len(self.infer)
        return Summary(
            self.capture.spec.describe(), frames, stats.dropped, tuple(stats.skipped), stats.reconnects, seconds,
            frames / max(seconds, 1e-9), _median(self.infer), _median(self.post), dict(self.counts),
            dict(self.peak), [{"second": s, "counts": dict(c)} for s, c in sorted(self.timeline.items())],
            self.stopped, self.zone_stats, self.crossing.summary() if self.crossing else {}, self.name,
            stats.undecoded,
        )


@dataclass(frozen=True)
class RunSummary:
    """A run over one source or several: each source's Summary by name ("" for the only, unnamed one), the wall
    time, the frames per second over all sources, the largest batch allowed and the model calls made (frames /
    batches: the mean batch). error: why an output failed and ended the run ("" when none did). published: what
    --publish sent, queued and dropped (None without it)."""

    sources: dict[str, Summary]
    seconds: float
    fps: float
    batch: int
    batches: int
    error: str = ""
    published: PublishStats | None = None

    def one(self) -> Summary:
        """The only source's summary."""
        (summary,) = self.sources.values()
        return summary

    def lines(self) -> list[str]:
        """One source: its summary; several: each under its name, then the total."""
        if len(self.sources) == 1:
            return self.one().lines() + (self.published.lines() if self.published else [])
        out = []
        for name, summary in self.sources.items():
            out += [f"{name}:", *(f"  {line}" for line in summary.lines())]
        frames = sum(s.frames for s in self.sources.values())
        out.append(f"{len(self.sources)} sources, {frames} frames in {self.seconds:.1f} s: {self.fps:.1f} FPS in all, "
                   f"{frames / max(self.batches, 1):.2f} frames per model call (up to {self.batch})")
        return out + (self.published.lines() if self.published else [])

    def as_dict(self) -> dict:
        """JSON-ready: one source's summary as it is; several under "sources", with the totals."""
        published = {"published": asdict(self.published)} if self.published else {}
        if len(self.sources) == 1:
            return {**asdict(self.one()), **published}
        return {"sources": {name: asdict(s) for name, s in self.sources.items()}, "seconds": self.seconds,
                "fps": self.fps, "batch": self.batch, "batches": self.batches, "error": self.error, **published}

    @property
    def lost(self) -> list[str]:
        """The sources lost for good (a camera or stream that did not come back)."""
        return [name for name, s in self.sources.items() if s.stopped.startswith(LOST)]


def run(
    sources: Sequence[tuple[str, Capture]],
    detector: Detector,
    worker: SinkWorker,
    stop: threading.Event,
    max_frames: int = 0,
    zones: Sequence[Zone] = (),
    lines: Sequence[Line] = (),
    track: bool = False,
    batch: int = 0,
    wait_ms: float = BATCH_WAIT_MS,
) -> RunSummary:
    """Detect in the frames of every source until each ends, stop is set, or max_frames (0: no limit) per source.

    sources: (name, capture) pairs, each capture made with prepare=detector.prepare. Frames ready from several
    sources run as one batch (up to batch, 0: one per source; a model with a fixed batch runs that many), waiting
    at most wait_ms for the sources not ready yet. Decoding, tracking and counting run in a thread of their own,
    the sinks in another. zones and lines: those whose source is "" apply to every source. track: track ids
    (lines imply it). A source lost for good ends alone when there are several; the only one raises.
    """
    runs = [SourceRun(name, capture, [z for z in zones if z.source in ("", name)],
                      [line for line in lines if line.source in ("", name)], track) for name, capture in sources]
    limit = _batch_limit(detector, batch or len(runs))
    gatherer = Gatherer(runs, limit, wait_ms / 1e3)
    post = Stage("postprocess", lambda job: _post(detector, worker, *job))
    active = list(runs)
    calls, failed = 0, None
    t0 = time.perf_counter()
    try:
        while active and not stop.is_set():
            got = gatherer.gather(active, stop)
            for source in got.ended:
                source.finish("end of source")
            for source, error in got.lost:
                if len(runs) == 1:
                    raise error
                log.error("%s: %s", source.name, error)
                source.finish(f"{LOST}: {error}")
            active = [s for s in active if not s.stopped]
            for group in _same_shape(got.frames):
                t1 = time.perf_counter()
                raw = detector.forward(np.concatenate([frame.prepared.batch for _, frame in group]))
                post.submit((group, raw, (time.perf_counter() - t1) * 1e3 / len(group)))
                calls += 1
            for source, _ in got.frames:
                source.taken += 1
                if max_frames and source.taken >= max_frames:
                    source.finish(f"stopped after {max_frames} frames")
            active = [s for s in active if not s.stopped]
    except KeyboardInterrupt:
        _finish_all(runs, "interrupted")
    except OutputError as exc:
        failed = exc
        _finish_all(runs, "output failed")
    finally:
        _finish_all(runs, "stopped")
        closing = _close(post, worker)
    failed = failed or closing
    seconds = time.perf_counter() - t0
    frames = sum(len(r.infer) for r in runs)
    return RunSummary({r.name: r.summary() for r in runs}, seconds, frames / max(seconds, 1e-9), limit, calls,
                      str(failed or ""))


def _line_event(c: Crossing) -> Event:
    return Event("line_crossing", {"line": c.line, "direction": c.direction, "track_id": c.track_id,
                                   "label": c.label, "box": list(c.box)})


def _zone_event(change: ZoneChange) -> Event:
    fields = {"zone": change.zone, "track_id": change.track_id, "label": change.label, "box": list(change.box)}
    return Event(change.kind, {**fields, "lost": change.lost} if change.kind == "zone_leave" else fields)


def _close(post: Stage, worker: SinkWorker) -> OutputError | None:
    """Close the postprocess stage, then the sinks (both, whatever fails); the first OutputError is returned."""
    failed = None
    try:
        post.close()
    except OutputError as exc:
        failed = exc
    finally:
        try:
            worker.close()
        except OutputError as exc:
            failed = failed or exc
    return failed


def _post(detector: Detector, worker: SinkWorker, group: list[tuple[SourceRun, Frame]], raw: np.ndarray,
          infer_ms: float) -> None:
    """The postprocess stage: decode one batch's raw output, then track, count and hand each frame to the sinks."""
    t0 = time.perf_counter()
    dets = detector.decode(raw, [t for _, frame in group for t in frame.prepared.transforms])
    post_ms = (time.perf_counter() - t0) * 1e3 / len(group)
    for (source, frame), det in zip(group, dets, strict=True):
        worker.submit(source.step(frame, det, infer_ms, post_ms))


def _batch_limit(detector: Detector, wanted: int) -> int:
    """The batch size to gather: wanted, or the model's fixed batch (with a note when that is smaller)."""
    fixed = detector.fixed_batch
    if fixed and fixed < wanted:
        log.info("%s has a fixed batch of %d: its frames run %d at a time (export with a dynamic batch axis to run "
                 "frames of several sources together)", Path(detector.model.name).name, fixed, fixed)
        return fixed
    return wanted


def _same_shape(frames: list[tuple[SourceRun, Frame]]) -> list[list[tuple[SourceRun, Frame]]]:
    """The frames grouped by the shape of their prepared input (models with a dynamic size may differ)."""
    groups: dict[tuple[int, ...], list[tuple[SourceRun, Frame]]] = {}
    for pair in frames:
        groups.setdefault(pair[1].prepared.batch.shape[1:], []).append(pair)
    return list(groups.values())


def _finish_all(runs: Sequence[SourceRun], why: str) -> None:
    for source in runs:
        source.finish(why)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _line_text(name: str, totals: dict[str, int]) -> str:
    """The overlay's label of a counting line, in ASCII (OpenCV's font has no arrows): "door: 4 -> 3 <-"."""
    return f"{name}: " + " ".join(f"{n} {ASCII_ARROWS[d]}" for d, n in totals.items())
