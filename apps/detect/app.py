"""The detection app's loop: capture thread -> detector -> sink thread, stopped cleanly, summarised at the end."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepipe.apps.detect.lines import Line, LineCounter
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.detect.sinks import Item, SinkWorker
from edgepipe.apps.detect.zones import Zone, count_in_zones
from edgepipe.apps.sources import Capture, Frame
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.track import IouTracker

log = logging.getLogger("edgepipe.detect")

# Crossing directions as the browser view (ARROWS) and the overlay's ASCII font (ASCII_ARROWS) show them.
ARROWS = {"left_to_right": "→", "right_to_left": "←", "top_to_bottom": "↓", "bottom_to_top": "↑"}
ASCII_ARROWS = {"left_to_right": ">", "right_to_left": "<", "top_to_bottom": "v", "bottom_to_top": "^"}
FORWARD = ("left_to_right", "top_to_bottom")


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
        return out


class FpsMeter:
    """Frames per second over the last `window` frames."""

    def __init__(self, window: int = 30) -> None:
        self._times: deque[float] = deque(maxlen=window)

    def tick(self) -> float:
        self._times.append(time.perf_counter())
        if len(self._times) < 2:
            return 0.0
        return (len(self._times) - 1) / max(self._times[-1] - self._times[0], 1e-9)


def drive(
    capture: Capture, worker: SinkWorker, stop: threading.Event, max_frames: int, step: Callable[[Frame], Item]
) -> tuple[int, str]:
    """The apps' loop: step(frame) for each captured frame, its Item to the sinks, until the source ends, stop is
    set, Ctrl-C, or max_frames (0: no limit). The capture and the sinks are closed however it ends (files flushed
    and playable); a source lost for good raises after that. Returns (frames processed, why it stopped)."""
    frames, stopped = 0, "end of source"
    try:
        for frame in capture.frames(stop):
            worker.submit(step(frame))
            frames += 1
            if max_frames and frames >= max_frames:
                stopped = f"stopped after {max_frames} frames"
                break
        if stop.is_set():
            stopped = "stopped"
    except KeyboardInterrupt:
        stopped = "interrupted"
    finally:
        capture.close()
        worker.close()
    return frames, stopped


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

    The capture must have been made with prepare=detector.prepare. zones: counted in every frame (the sinks get
    the counts in stats["zones"]). track: give detections track ids (stats["track_ids"]); lines: count tracked
    objects crossing them (stats["lines"], the totals so far; implies tracking).
    """
    tracker = IouTracker() if track or lines else None
    crossing = LineCounter(lines, forget=tracker.max_age) if tracker and lines else None
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
        stats = {"fps": round(fps, 1), "latency_ms": round(result.infer_ms + result.post_ms, 2),
                 "counts": dict(in_frame), "frame": frame.index}
        if zones:
            stats["zones"] = count_in_zones(det, zones)
            for name, n in stats["zones"].items():
                zone_stats[name]["peak"] = max(zone_stats[name]["peak"], n)
                zone_stats[name]["frames"] += n > 0
                stats["counts"][f"zone {name}"] = n  # shown on the browser view beside the classes
        marks = _track(tracker, crossing, det, stats) if tracker is not None else ()
        return Item(frame, det, f"{fps:.1f} FPS  model {result.infer_ms:.1f} ms", stats, marks)

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


def _track(tracker: IouTracker, crossing: LineCounter | None, det: Detections, stats: dict) -> tuple:
    """Track ids (stats["track_ids"]) and, with lines, their totals so far (stats["lines"], and in stats["counts"]
    for the browser view). Returns the overlay's marks: each line with its counts."""
    ids = tracker.update(det)
    stats["track_ids"] = ids.tolist()
    if crossing is None:
        return ()
    stats["lines"] = crossing.update(det, ids, tracker.classes(ids))
    for name, totals in stats["lines"].items():
        for direction, n in totals.items():
            stats["counts"][f"line {name} {ARROWS[direction]}"] = n
    return tuple((line.xyxy, _line_text(line.name, stats["lines"][line.name])) for line in crossing.lines)


def _line_text(name: str, totals: dict[str, int]) -> str:
    """The overlay's label of a counting line, ASCII (OpenCV's font): "door 4> <3"."""
    return f"{name} " + " ".join(f"{n}{ASCII_ARROWS[d]}" if d in FORWARD else f"{ASCII_ARROWS[d]}{n}"
                                 for d, n in totals.items())
