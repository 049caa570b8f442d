"""Where detections go: JSON Lines, an annotated video or images, a window, the browser view; run in one thread."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgepipe.apps.stream.draw import ARROWS, Mark, draw_detections
from edgepipe.apps.stream.sources import Frame
from edgepipe.apps.stream.stage import Stage
from edgepipe.postprocess.detections import Detections
from edgepipe.runtime.files import Output, OutputError, check_outputs, room_left
from edgepipe.runtime.video import open_video_writer, video_codec

log = logging.getLogger("edgepipe.sink")

# A video keeps this much room free for what closing it writes: RESERVE_BYTES, plus RESERVE_FRAMES frames of the
# size written so far, plus INDEX_BYTES_PER_FRAME per frame for the container's index (an .mp4 writes it at the end).
RESERVE_BYTES = 64 * 1024
RESERVE_FRAMES = 4
INDEX_BYTES_PER_FRAME = 32
FIRST_FRAME_RATIO = 8  # before the first frame is written, a frame is guessed at its raw size / this




@dataclass(frozen=True)
class Event:
    """Something that happened in a frame, for the event publisher (apps/stream/events.py): its type
    ("line_crossing", "zone_enter", "zone_leave", "decision") and its fields, JSON-ready."""

    type: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class Item:
    """One processed frame on its way to the sinks.

    detections: in frame pixels, with track ids when tracked. status: the overlay's status line. fps: frames per
    second of the loop; latency_ms: the frame's processing time. counts: objects in the frame by label, as the
    browser view lists them. zones: per zone, the detections inside it in this frame. lines: per counting line,
    its crossings so far per direction. marks: segments to draw. verdict: the kiosk's decision shown ("" for
    none), verdict_kind: "welcome", "unknown" or "info". source: the source's name in a run with several ("" for
    the only, unnamed one). notice: a warning for the page ("" for none), e.g. a gallery server that went away.
    state: more of the app's state for the page's /stats.json, by name. events: what happened in this frame (a line
    crossed, a zone entered or left, a kiosk decision).
    """

    frame: Frame
    detections: Detections
    status: str
    fps: float
    latency_ms: float
    counts: dict[str, int]
    zones: dict[str, int] = field(default_factory=dict)
    lines: dict[str, dict[str, int]] = field(default_factory=dict)
    marks: tuple[Mark, ...] = ()
    verdict: str = ""
    verdict_kind: str = ""
    source: str = ""
    notice: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    events: tuple[Event, ...] = ()


class Sink(Protocol):
    overlay: bool  # whether the sink takes the annotated image

    def write(self, item: Item, annotated: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


class JsonlSink:
    """One JSON line per frame: {"frame", "time", "detections": [{"xyxy", "score", "class_id", "class_name"}]},
    with "keypoints" and "keypoint_scores" in each detection of a pose model, "track_id" when tracking, "zones" and
    "lines" counts when asked for, and "source" in a run with several. Each line is flushed as it is written; when a
    write fails (a full disk) the file is cut back to its last complete line and an OutputError names the file and
    the reason."""

    overlay = False

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        check_outputs([Output("--jsonl", self.path)])
        self._file = self.path.open("w", encoding="utf-8")
        self._good = 0  # bytes of complete lines on disk

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        record: dict[str, Any] = {"frame": item.frame.index, "time": round(item.frame.time, 4),
                                  "detections": item.detections.to_dicts()}
        if item.source:
            record["source"] = item.source
        if item.frame.name:
            record["image"] = item.frame.name
        if item.zones:
            record["zones"] = item.zones
        if item.lines:
            record["lines"] = item.lines
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as exc:
            self._cut_back()
            raise OutputError(f"cannot write --jsonl {self.path}: {exc.strerror or exc}; the lines written before "
                              "it stay complete") from None
        self._good = self._file.tell()

    def _cut_back(self) -> None:
        """Drop what a failed write left after the last complete line (truncating needs no space)."""
        with contextlib.suppress(OSError):
            os.truncate(self.path, self._good)
        with contextlib.suppress(OSError):
            self._file.close()

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.close()
        except OSError as exc:
            self._cut_back()
            raise OutputError(f"cannot write --jsonl {self.path}: {exc.strerror or exc}") from None


class VideoSink:
    """An annotated video, opened at the first frame (its size); released on close so the file is playable.

    OpenCV's writer does not report a failed write, so before each frame the room left for the file is measured
    (the free space on its file system, and the process's file size limit): when it falls below what the next
    frames and the file's index need, writing stops, the video is closed (playable up to there) and an OutputError
    ends the run."""

    overlay = True

    def __init__(self, path: Path, fps: float) -> None:
        video_codec(path, "--save")  # a bad suffix fails here, before the run
        self.path = Path(path)
        check_outputs([Output("--save", self.path)])
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)  # (height, width) of the first frame: every frame is written at it

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        image = annotated if annotated is not None else item.frame.image
        if self._writer is None:
            self._size = image.shape[:2]
            self._writer = open_video_writer(self.path, self.fps, self._size, "--save")
        left, needed = room_left(self.path), self._reserve()
        if left < needed:
            self.close()
            raise OutputError(f"cannot write --save {self.path}: only {left // 1024} KB of room left (the disk or "
                              f"the file size limit), {needed // 1024} KB needed; the video was closed after "
                              f"{self.frames} frame(s) and plays up to there")
        if image.shape[:2] != self._size:
            image = cv2.resize(image, (self._size[1], self._size[0]))
        self._writer.write(image)
        self.frames += 1

    def _reserve(self) -> int:
        """Bytes to keep free: a few frames at the size they have taken so far, and the file's closing index."""
        size = self.path.stat().st_size if self.path.exists() else 0
        per_frame = size / self.frames if self.frames else self._size[0] * self._size[1] * 3 / FIRST_FRAME_RATIO
        return int(RESERVE_FRAMES * per_frame + INDEX_BYTES_PER_FRAME * (self.frames + 1) + RESERVE_BYTES)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class ImageSink:
    """Annotated images for image sources: FOLDER/NAME, one per input image."""

    overlay = True

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        check_outputs([Output("--save", self.folder, folder=True)])

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        name = item.frame.name or f"{item.frame.index:06d}.jpg"
        path = self.folder / name
        if not cv2.imwrite(str(path), annotated if annotated is not None else item.frame.image):
            raise OutputError(f"cannot write --save {path}: the disk is full or the folder went away")

    def close(self) -> None:
        pass


def display_available() -> bool:
    """Whether a window can be shown: on Linux, a display server must be named (DISPLAY or WAYLAND_DISPLAY)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """A cv2.imshow window per source (titled TITLE: NAME in a run with several); q or Esc in one asks the app to
    stop (stop_requested). An OpenCV that cannot open a window (a headless build, a display that went away) turns
    the windows off with a warning: the run goes on."""

    overlay = True

    def __init__(self, title: str, stop_requested: threading.Event | None = None) -> None:
        self.title = title
        self.stop_requested = stop_requested or threading.Event()
        self.enabled = True

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        if not self.enabled:
            return
        try:
            title = f"{self.title}: {item.source}" if item.source else self.title
            cv2.imshow(title, annotated if annotated is not None else item.frame.image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            self.enabled = False
            log.warning("cannot show a window (%s): going on without one; pass --no-show to skip it",
                        str(exc).strip().splitlines()[-1][:120])
            return
        if key in (ord("q"), 27):
            self.stop_requested.set()

    def close(self) -> None:
        if self.enabled:
            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()


class ViewSink:
    """The browser view: publishes the annotated frame and the stats (view_stats) to an apps.stream.web.LiveView."""

    overlay = True

    def __init__(self, view: Any) -> None:
        self.view = view

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        self.view.publish(annotated if annotated is not None else item.frame.image, view_stats(item), item.source)

    def close(self) -> None:
        self.view.close()


def view_stats(item: Item) -> dict[str, Any]:
    """What the browser view shows of an item (its /stats.json): fps, latency, the counts list (labels, then each
    zone, then each line's totals per direction with its arrow), zones and lines, the kiosk's verdict, the notice
    and the item's state."""
    counts: dict[str, int] = dict(item.counts)
    counts.update((f"zone {name}", n) for name, n in item.zones.items())
    for name, totals in item.lines.items():
        counts.update((f"line {name} {ARROWS[direction]}", n) for direction, n in totals.items())
    stats: dict[str, Any] = {"fps": round(item.fps, 1), "latency_ms": round(item.latency_ms, 2), "counts": counts,
                             "frame": item.frame.index}
    if item.zones:
        stats["zones"] = item.zones
    if item.lines:
        stats["lines"] = item.lines
    if item.verdict_kind:
        stats.update(verdict=item.verdict, verdict_kind=item.verdict_kind)
    if item.notice:
        stats["notice"] = item.notice
    return {**item.state, **stats}


def close_sinks(sinks: Iterable[Sink], error: Exception | None = None) -> None:
    """Close every sink (all of them, whatever fails), then raise error if given, else the first close's error."""
    for sink in sinks:
        try:
            sink.close()
        except Exception as exc:
            error = error or exc
    if error is not None:
        raise error


class BySource:
    """Each item to its source's own sink (a run with several sources: a video file per source), by name."""

    def __init__(self, sinks: dict[str, Sink]) -> None:
        self.sinks = sinks
        self.overlay = any(s.overlay for s in sinks.values())

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        self.sinks[item.source].write(item, annotated)

    def close(self) -> None:
        close_sinks(self.sinks.values())


def screen_sinks(serve: str | None, show: bool | None, title: str, stop: threading.Event,
                 sources: Sequence[str] = ("",)) -> list[Sink]:
    """The browser view (serve: "HOST:PORT") and the windows (show: None = when a display is present) the options
    ask for, for the sources named (("",) for the only, unnamed one); q in a window sets stop. The view is started
    here, so a busy port fails before any work."""
    sinks: list[Sink] = []
    if serve:
        from edgepipe.apps.stream.web import LiveView, parse_address

        view = LiveView(*parse_address(serve), title=title, sources=sources).start()
        log.info("live view at %s", view.url)
        sinks.append(ViewSink(view))
    wanted = display_available() if show is None else show
    if wanted and not display_available():
        log.warning("--show: no display here (DISPLAY is not set): running without a window")
    elif wanted:
        sinks.append(WindowSink(title, stop))
    return sinks


class SinkWorker:
    """Runs the sinks in one thread (a Stage) so drawing and encoding overlap inference; the overlay is drawn once
    per frame.

    submit() blocks when the worker is queue_size frames behind (nothing is dropped); an error in a sink is raised
    from the next submit() or from close(). close() writes what is queued, then closes every sink.
    """

    def __init__(self, sinks: list[Sink], queue_size: int = 8) -> None:
        self.sinks = sinks
        self._overlay = any(s.overlay for s in sinks)
        self._stage: Stage[Item] = Stage("sinks", self._write, queue_size)

    def submit(self, item: Item) -> None:
        self._stage.submit(item)

    def close(self) -> None:
        try:
            self._stage.close()
        except Exception as exc:
            close_sinks(self.sinks, exc)
        close_sinks(self.sinks)

    def _write(self, item: Item) -> None:
        annotated = (draw_detections(item.frame.image, item.detections, item.status, item.marks)
                     if self._overlay else None)
        for sink in self.sinks:
            sink.write(item, annotated)
