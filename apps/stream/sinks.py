"""Where detections go: JSON Lines, an annotated video or images, a window, the browser view; run in one thread."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgepipe.apps.stream.draw import ARROWS, Mark, draw_detections
from edgepipe.apps.stream.sources import Frame
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.video import open_video_writer, video_codec

log = logging.getLogger("edgepipe.sink")




@dataclass(frozen=True)
class Item:
    """One processed frame on its way to the sinks.

    detections: in frame pixels, with track ids when tracked. status: the overlay's status line. fps: frames per
    second of the loop; latency_ms: the frame's processing time. counts: objects in the frame by label, as the
    browser view lists them. zones: per zone, the detections inside it in this frame. lines: per counting line,
    its crossings so far per direction. marks: segments to draw. verdict: the kiosk's decision shown ("" for
    none), verdict_kind: "welcome", "unknown" or "info".
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


class Sink(Protocol):
    overlay: bool  # whether the sink takes the annotated image

    def write(self, item: Item, annotated: np.ndarray | None) -> None: ...

    def close(self) -> None: ...


def check_writable(path: Path, what: str, folder: bool = False) -> Path:
    """Fail before capture starts when an output cannot be written; creates missing parent folders."""
    path = Path(path)
    target = path if folder else path.parent
    if not folder and path.is_dir():
        raise UserError(f"{what} {path} is a folder: give a file path")
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file: give a folder for the annotated images")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder for {what} {path}: {exc.strerror}") from None
    if not os.access(target, os.W_OK) or (path.exists() and not folder and not os.access(path, os.W_OK)):
        raise UserError(f"cannot write {what} {path}: permission denied; choose another path")
    return path


class JsonlSink:
    """One JSON line per frame: {"frame", "time", "detections": [{"xyxy", "score", "class_id", "class_name"}]},
    with "keypoints" and "keypoint_scores" in each detection of a pose model, "track_id" when tracking, "zones" and
    "lines" counts when asked for."""

    overlay = False

    def __init__(self, path: Path) -> None:
        self.path = check_writable(path, "--jsonl")
        self._file = self.path.open("w", encoding="utf-8")

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        record: dict[str, Any] = {"frame": item.frame.index, "time": round(item.frame.time, 4),
                                  "detections": item.detections.to_dicts()}
        if item.frame.name:
            record["image"] = item.frame.name
        if item.zones:
            record["zones"] = item.zones
        if item.lines:
            record["lines"] = item.lines
        self._file.write(json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()


class VideoSink:
    """An annotated video, opened at the first frame (its size); released on close so the file is playable."""

    overlay = True

    def __init__(self, path: Path, fps: float) -> None:
        video_codec(path, "--save")  # a bad suffix fails here, before the run
        self.path = check_writable(Path(path), "--save")
        self.fps = fps
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)  # (height, width) of the first frame: every frame is written at it

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        image = annotated if annotated is not None else item.frame.image
        if self._writer is None:
            self._size = image.shape[:2]
            self._writer = open_video_writer(self.path, self.fps, self._size, "--save")
        if image.shape[:2] != self._size:
            image = cv2.resize(image, (self._size[1], self._size[0]))
        self._writer.write(image)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class ImageSink:
    """Annotated images for image sources: FOLDER/NAME, one per input image."""

    overlay = True

    def __init__(self, folder: Path) -> None:
        self.folder = check_writable(folder, "--save", folder=True)

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        name = item.frame.name or f"{item.frame.index:06d}.jpg"
        path = self.folder / name
        if not cv2.imwrite(str(path), annotated if annotated is not None else item.frame.image):
            raise UserError(f"cannot write {path}")

    def close(self) -> None:
        pass


def display_available() -> bool:
    """Whether a window can be shown: on Linux, a display server must be named (DISPLAY or WAYLAND_DISPLAY)."""
    return not sys.platform.startswith("linux") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class WindowSink:
    """A cv2.imshow window; q or Esc in it asks the app to stop (stop_requested). An OpenCV that cannot open a
    window (a headless build, a display that went away) turns the window off with a warning: the run goes on."""

    overlay = True

    def __init__(self, title: str, stop_requested: threading.Event | None = None) -> None:
        self.title = title
        self.stop_requested = stop_requested or threading.Event()
        self.enabled = True

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        if not self.enabled:
            return
        try:
            cv2.imshow(self.title, annotated if annotated is not None else item.frame.image)
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
        self.view.publish(annotated if annotated is not None else item.frame.image, view_stats(item))

    def close(self) -> None:
        self.view.close()


def view_stats(item: Item) -> dict[str, Any]:
    """What the browser view shows of an item (its /stats.json): fps, latency, the counts list (labels, then each
    zone, then each line's totals per direction with its arrow), zones and lines, and the kiosk's verdict."""
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
    return stats


def screen_sinks(serve: str | None, show: bool | None, title: str, stop: threading.Event) -> list[Sink]:
    """The browser view (serve: "HOST:PORT") and the window (show: None = when a display is present) the options
    ask for; q in the window sets stop. The view is started here, so a busy port fails before any work."""
    sinks: list[Sink] = []
    if serve:
        from edgepipe.apps.stream.web import LiveView, parse_address

        view = LiveView(*parse_address(serve), title=title).start()
        log.info("live view at %s", view.url)
        sinks.append(ViewSink(view))
    wanted = display_available() if show is None else show
    if wanted and not display_available():
        log.warning("--show: no display here (DISPLAY is not set): running without a window")
    elif wanted:
        sinks.append(WindowSink(title, stop))
    return sinks


class SinkWorker:
    """Runs the sinks in one thread so drawing and encoding overlap inference; the overlay is drawn once per frame.

    submit() blocks when the worker is queue_size frames behind (nothing is dropped); an error in a sink is raised
    from the next submit() or from close(). close() writes what is queued, then closes every sink.
    """

    def __init__(self, sinks: list[Sink], queue_size: int = 8) -> None:
        self.sinks = sinks
        self._overlay = any(s.overlay for s in sinks)
        self._queue: queue.Queue[Item | None] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sinks", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> None:
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close the others first; report the first failure after
                self._error = self._error or exc
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so submit() never blocks on a failed worker
            try:
                annotated = (draw_detections(item.frame.image, item.detections, item.status, item.marks)
                             if self._overlay else None)
                for sink in self.sinks:
                    sink.write(item, annotated)
            except Exception as exc:
                self._error = exc
