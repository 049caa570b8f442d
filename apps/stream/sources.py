"""Frame sources for the camera apps: cameras, streams, video files, images, folders and globs, read in a thread."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from edgepipe.apps.stream.specs import STREAM_SCHEMES, SourceSpec
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.source")

RETRIES = 5  # reconnect attempts for a lost camera or stream, by default
STREAM_TIMEOUT_MS = 10_000  # a stream that does not answer opening, or a frame, within this is lost
CLOSE_WAIT_S = 0.5  # close() waits this long for the capture thread (one blocked in OpenCV is left to end alone)
T = TypeVar("T")


class SourceError(UserError):
    """A source that cannot be opened, or a live source lost for good (after its reconnect attempts)."""


@dataclass(frozen=True)
class Frame:
    """One captured frame. index: 0-based, in source order (live sources count frames captured, dropped ones too).

    time: seconds, the video position for files (index / fps), since the start for live sources and images.
    image: (H, W, 3) uint8 BGR. name: the file name for image sources, else "". prepared: what the app's prepare
    callable made of the image in the capture thread (e.g. the network input), or None without one.
    """

    index: int
    time: float
    image: np.ndarray
    name: str = ""
    prepared: Any = None


@dataclass
class CaptureStats:
    """Counts kept by the capture thread: frames read, dropped (live sources, the consumer too slow), skipped
    images (unreadable, with the reason), reconnects, and a video's frames that could not be decoded (its index
    counts more frames than the decoder gave: the file is damaged or cut)."""

    read: int = 0
    dropped: int = 0
    reconnects: int = 0
    skipped: list[str] = field(default_factory=list)
    undecoded: int = 0


Opener = Callable[[int | str], Any]  # returns an object with isOpened(), read() -> (ok, image), get(prop), release()


def open_video(target: int | str) -> cv2.VideoCapture:
    """OpenCV's capture for a camera index, device path, URL or video file (OpenCV's own warnings silenced: the
    capture reports what failed). A stream gives up opening, or reading one frame, after STREAM_TIMEOUT_MS."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(min(level, cv2.utils.logging.LOG_LEVEL_ERROR))
    try:
        if isinstance(target, str) and target.lower().startswith(STREAM_SCHEMES):
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                        STREAM_TIMEOUT_MS]
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)
        return cv2.VideoCapture(target)
    finally:
        cv2.utils.logging.setLogLevel(level)


@contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """While OpenCV's log level is silent (the command line without --verbose), standard error goes to /dev/null:
    some of OpenCV's file readers print their complaints straight to it, past its log level. Used around opening a
    source only, before the app's other threads write anything."""
    if cv2.utils.logging.getLogLevel() != cv2.utils.logging.LOG_LEVEL_SILENT:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def interruptible(fn: Callable[[], T]) -> T:
    """fn() in a helper thread, waited on in short steps: Ctrl-C (delivered to the main thread between them) stops
    the wait at once, however long fn blocks in native code (opening a stream that does not answer); the helper is
    left to end on its own."""
    result: dict[str, Any] = {}

    def call() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    helper = threading.Thread(target=call, name="open", daemon=True)
    helper.start()
    while helper.is_alive():
        helper.join(0.1)
    if "error" in result:
        raise result["error"]
    return result["value"]


class Capture:
    """Read a source in its own thread; iterate frames() in the consumer.

    Live sources keep only the newest frame (a slow consumer drops frames, counted in stats.dropped) and are
    reopened with exponential backoff when they stop delivering (retries attempts, backoff..max_backoff seconds),
    then give up with a SourceError. Files are read in full, in order, through a bounded queue; the end of the file
    ends the iteration, or starts the file over with loop (frame numbers and times go on). Unreadable images are
    skipped and listed in stats.skipped. prepare(image) runs in the capture thread (e.g. preprocessing), so it
    overlaps the consumer's work. ready, when set to an event, is set whenever a frame (or the end) is handed over:
    a consumer of several captures waits on one event and polls each (poll()).
    """

    def __init__(
        self,
        spec: SourceSpec,
        prepare: Callable[[np.ndarray], Any] | None = None,
        retries: int = RETRIES,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        queue_size: int = 4,
        opener: Opener = open_video,
        loop: bool = False,
    ) -> None:
        if retries < 0 or backoff < 0 or max_backoff < backoff or queue_size < 1:
            raise UserError(f"need retries >= 0, 0 <= backoff <= max_backoff, queue_size >= 1, but got "
                             f"{retries}, {backoff}, {max_backoff}, {queue_size}")
        self.spec = spec
        self.prepare = prepare
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.opener = opener
        self.loop = loop and spec.kind == "video"
        self.stats = CaptureStats()
        self.fps = 0.0
        self._stop = threading.Event()
        self._queue: queue.Queue[Frame | None] = queue.Queue(maxsize=1 if spec.live else queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._cap: Any = None
        self._t0 = time.perf_counter()
        self.ready: threading.Event | None = None
        self._ended = False

    def open(self) -> Capture:
        """Open the source now (a file or camera that cannot be opened raises here, before any work) and start."""
        if self.spec.kind != "images":
            with native_stderr_quiet():
                self._cap = interruptible(self._open_video)
            fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps = fps if 0 < fps < 1000 else 30.0
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def __enter__(self) -> Capture:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the thread and release the device or file (idempotent)."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive():
            self._thread.join(timeout=CLOSE_WAIT_S)
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def frames(self, stop: threading.Event | None = None) -> Iterator[Frame]:
        """Frames in order until the source ends, close() is called or stop is set (checked every 0.1 s while
        waiting). A source lost for good, or a failing prepare, raises after the frames read before it."""
        while stop is None or not stop.is_set():
            try:
                frame = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if frame is None:
                break
            yield frame
        if self._error is not None:
            raise self._error

    def poll(self) -> Frame | None:
        """The next frame if one is ready, else None, without waiting. At the end of the source `ended` turns true;
        a source lost for good, or a failing prepare, raises once the frames read before it are taken."""
        if self._ended:
            return None
        try:
            frame = self._queue.get_nowait()
        except queue.Empty:
            return None
        if frame is None:
            self._ended = True
            if self._error is not None:
                raise self._error
        return frame

    @property
    def ended(self) -> bool:
        """Whether poll() has handed over the source's last frame."""
        return self._ended

    # The capture thread.

    def _run(self) -> None:
        try:
            if self.spec.kind == "images":
                self._read_images()
            else:
                self._read_video()
        except BaseException as exc:  # handed to the consumer, raised from frames()
            self._error = exc
        finally:
            self._put_end()

    def _put(self, frame: Frame) -> None:
        """Hand a frame over: live sources replace an unread one (counted as dropped), files wait for room."""
        if self.spec.live:
            try:
                self._queue.get_nowait()
                self.stats.dropped += 1
            except queue.Empty:
                pass
            self._queue.put(frame)
            self._signal()
            return
        while not self._stop.is_set():
            try:
                self._queue.put(frame, timeout=0.1)
                self._signal()
                return
            except queue.Full:
                continue

    def _signal(self) -> None:
        if self.ready is not None:
            self.ready.set()

    def _put_end(self) -> None:
        while True:
            try:
                self._queue.put(None, timeout=0.1)
                self._signal()
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # stopping: the unread frame is not needed

    def _frame(self, index: int, image: np.ndarray, t: float, name: str = "") -> Frame:
        prepared = self.prepare(image) if self.prepare is not None else None
        return Frame(index, t, image, name, prepared)

    def _read_images(self) -> None:
        for index, path in enumerate(self.spec.paths):
            if self._stop.is_set():
                return
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                reason = f"{path}: not an image OpenCV can read (corrupt or unsupported), skipped"
                log.warning(reason)
                self.stats.skipped.append(reason)
                continue
            self.stats.read += 1
            self._put(self._frame(index, image, time.perf_counter() - self._t0, Path(path).name))

    def _read_video(self) -> None:
        index = passed = 0  # frames so far, and at the start of this pass through a file
        while not self._stop.is_set():
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.spec.live:
                    self._reconnect()
                    continue
                if index == passed:
                    raise SourceError(f"video {self.spec.target} opened but gave no frame: it is empty, cut before "
                                      "its first frame, or in a codec OpenCV cannot decode; give another source")
                self._count_undecoded(index - passed)
                if not self.loop:
                    return  # the end of the file
                self._cap.release()
                self._cap = self._open_video()  # play the file again, frame numbers going on
                passed = index
                continue
            image = _as_bgr(image)
            t = index / self.fps if not self.spec.live else time.perf_counter() - self._t0
            self.stats.read += 1
            self._put(self._frame(index, image, t))
            index += 1

    def _count_undecoded(self, decoded: int) -> None:
        """At the end of a file: the frames its index counts that the decoder did not give (logged, counted)."""
        expected = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if expected > decoded:
            self.stats.undecoded += expected - decoded
            log.warning("video %s: %d of its %d frames could not be decoded (the file is damaged or cut); %d were "
                        "processed", self.spec.target, expected - decoded, expected, decoded)

    def _open_video(self) -> Any:
        cap = self.opener(self.spec.target)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            raise SourceError(_open_error(self.spec))
        return cap

    def _reconnect(self) -> None:
        """Reopen a lost live source with exponential backoff; SourceError after self.retries failed attempts."""
        self._cap.release()
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            log.warning("%s stopped delivering frames: reconnecting in %.1f s (attempt %d of %d)",
                        self.spec.describe(), delay, attempt, self.retries)
            if self._stop.wait(delay):
                return
            cap = self.opener(self.spec.target)
            if cap is not None and cap.isOpened():
                ok, image = cap.read()
                if ok and image is not None:
                    log.info("%s reconnected", self.spec.describe())
                    self.stats.reconnects += 1
                    self._cap = _Primed(cap, image)
                    return
            if cap is not None:
                cap.release()
            delay = min(delay * 2, self.max_backoff)
        raise SourceError(f"{self.spec.describe()} stopped delivering frames and did not come back after "
                          f"{self.retries} reconnect attempt(s): check the camera or stream, or raise --retries")


class _Primed:
    """A reopened capture whose first frame was already read to test it: read() returns that frame first."""

    def __init__(self, cap: Any, first: np.ndarray) -> None:
        self._cap, self._first = cap, first

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._first is not None:
            first, self._first = self._first, None
            return True, first
        return self._cap.read()

    def get(self, prop: int) -> float:
        return self._cap.get(prop)

    def release(self) -> None:
        self._cap.release()


def _as_bgr(image: np.ndarray) -> np.ndarray:
    """A captured image as (H, W, 3) uint8 BGR (gray cameras give (H, W), some give BGRA)."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _open_error(spec: SourceSpec) -> str:
    if spec.kind == "video":
        return (f"cannot read video {spec.target}: not a video OpenCV can decode (corrupt, or an unsupported "
                "codec); convert it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or give another source")
    if spec.kind == "camera":
        return (f"cannot open camera {spec.target}: is it connected, and not used by another program? "
                "(list cameras with: ls /dev/video*)")
    return f"cannot open stream {spec.target}: check the URL and that the stream is up"
