"""The detection app's loop: capture thread -> detector -> sink thread, stopped cleanly, summarised at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepipe.apps.detect.lines import Line, LineCounter
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.detect.zones import Zone, ZoneChange, ZoneWatch, count_in_zones
from edgepipe.apps.stream.draw import ASCII_ARROWS, Mark
from edgepipe.apps.stream.loop import FpsMeter, drive
from edgepipe.apps.stream.mqtt import PublishStats
from edgepipe.apps.stream.sinks import Event, Item, SinkWorker
from edgepipe.apps.stream.sources import Capture, Frame
from edgepipe.postprocess.track import IouTracker

log = logging.getLogger("edgepipe.detect")

FORWARD = ("left_to_right", "top_to_bottom")  # directions whose count goes before the arrow in a line's label


@dataclass(frozen=True)
class Summary:
    """What a run did. counts: detections per class over the run; peak: most of a class in one frame;
    timeline: per second of source time, the most of each class seen in one frame then. fps: frames processed per
    wall-clock second. infer_ms / post_ms: medians per frame. stopped: why the run ended. zones: per --zone, the
    most detections inside it in one frame ("peak") and the frames with at least one ("frames"). crossings: per
    --line, the tracked objects that crossed it per direction, and per direction and class ("by_class")."""

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
    published: PublishStats | None = None

    def lines(self) -> list[str]:
        """The summary as printed at the end of a run."""
        out = [f"{self.frames} frames from {self.source} in {self.seconds:.1f} s: {self.fps:.1f} FPS, model "
               f"{self.infer_ms:.2f} ms + postprocess {self.post_ms:.2f} ms per frame (medians); {self.stopped}"]
        if self.dropped:
            out.append(f"{self.dropped} frames dropped (the live source was faster than the model)")
        if self.reconnects:
            out.append(f"{self.reconnects} reconnect(s)")
        out += [f"skipped {s}" for s in self.skipped]
        for name, n in sorted(self.counts.items(), key=lambda kv: -kv[1]):
            out.append(f"  {name:<12} {n:>7} detections, at most {self.peak[name]} in one frame")
        for name, z in self.zones.items():
            out.append(f"  zone {name}: at most {z['peak']} inside at once, occupied in {z['frames']} frames")
        for name, c in self.crossings.items():
            ways = ", ".join(f"{n} {d.replace('_', ' ')}" for d, n in c.items() if d != "by_class")
            out.append(f"  line {name}: {ways}")
        return out + (self.published.lines() if self.published else [])


def run(
    capture: Capture,
    detector: Detector,
    worker: SinkWorker,
    stop: threading.Event,
    max_frames: int = 0,
    zones: Sequence[Zone] = (),
    lines: Sequence[Line] = (),
    track: bool = False,
) -> Summary:
    """Detect in frames until the source ends, stop is set, or max_frames (0: no limit) are done.

    The capture must have been made with prepare=detector.prepare. zones: counted in every frame (Item.zones).
    track: give detections track ids; lines: count tracked objects crossing them (Item.lines, the totals so far;
    implies tracking). With tracking, each frame's line crossings and zone entries and exits are Item.events.
    """
    tracker = IouTracker() if track or lines else None
    crossing = LineCounter(lines, forget=tracker.max_age) if tracker and lines else None
    watch = ZoneWatch(zones, forget=tracker.max_age) if tracker and zones else None
    counts: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    timeline: dict[int, Counter[str]] = {}
    infer, post = [], []
    meter = FpsMeter()
    zone_stats = {z.name: {"peak": 0, "frames": 0} for z in zones}

    def step(frame: Frame) -> Item:
        (result,) = detector.infer(frame.prepared)
        det = result.detections
        fps = meter.tick()
        infer.append(result.infer_ms)
        post.append(result.post_ms)
        in_frame = Counter(det.class_name(int(c)) for c in det.class_ids)
        counts.update(in_frame)
        second = timeline.setdefault(int(frame.time), Counter())
        for name, n in in_frame.items():
            peak[name] = max(peak[name], n)
            second[name] = max(second[name], n)
        inside = count_in_zones(det, zones) if zones else {}
        for name, n in inside.items():
            zone_stats[name]["peak"] = max(zone_stats[name]["peak"], n)
            zone_stats[name]["frames"] += n > 0
        totals: dict[str, dict[str, int]] = {}
        events: list[Event] = []
        if tracker is not None:
            det = det.with_track_ids(tracker.update(det))
            classes = tracker.classes(det.track_ids)
            if crossing is not None:
                totals = crossing.update(det, det.track_ids, classes)
                events += [Event("line_crossing", {"line": c.line, "direction": c.direction, "track_id": c.track_id,
                                                   "label": c.label, "box": list(c.box)}) for c in crossing.crossed]
            if watch is not None:
                events += [_zone_event(change) for change in watch.update(det, det.track_ids, classes)]
        marks = tuple(Mark(line.xyxy, _line_text(line.name, totals[line.name])) for line in lines) if totals else ()
        return Item(frame, det, f"{fps:.1f} FPS  model {result.infer_ms:.1f} ms", fps,
                    result.infer_ms + result.post_ms, dict(in_frame), inside, totals, marks, events=tuple(events))

    t0 = time.perf_counter()
    frames, stopped = drive(capture, worker, stop, max_frames, step)
    seconds = time.perf_counter() - t0
    return Summary(
        capture.spec.describe(), frames, capture.stats.dropped, tuple(capture.stats.skipped),
        capture.stats.reconnects, seconds, frames / max(seconds, 1e-9),
        float(np.median(infer)) if infer else 0.0, float(np.median(post)) if post else 0.0,
        dict(counts), dict(peak), [{"second": s, "counts": dict(c)} for s, c in sorted(timeline.items())], stopped,
        zone_stats, crossing.summary() if crossing else {},
    )


def _zone_event(change: ZoneChange) -> Event:
    fields = {"zone": change.zone, "track_id": change.track_id, "label": change.label, "box": list(change.box)}
    return Event(change.kind, {**fields, "lost": change.lost} if change.kind == "zone_leave" else fields)


def _line_text(name: str, totals: dict[str, int]) -> str:
    """The overlay's label of a counting line, ASCII (OpenCV's font): "door 4> <3"."""
    return f"{name} " + " ".join(f"{n}{ASCII_ARROWS[d]}" if d in FORWARD else f"{ASCII_ARROWS[d]}{n}"
                                 for d, n in totals.items())
