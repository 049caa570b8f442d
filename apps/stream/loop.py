"""The camera apps' frame loop: a step per captured frame, its Item to the sinks, a clean stop however it ends."""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from edgepipe.apps.stream.sinks import Item, SinkWorker
from edgepipe.apps.stream.sources import RETRIES, Capture, Frame, SourceSpec, parse_source
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class StreamOptions:
    """Where a camera app's frames come from and where its live view goes.

    source: as on the command line (a camera index, /dev/videoN, a video file, an image, a folder, a glob or a
    stream URL). retries: reconnect attempts for a lost camera or stream. max_frames: stop after this many (0: no
    limit). loop: play a video file again and again. serve: "HOST:PORT" of the browser view ("" for none). show: a
    window (None: when a display is present).
    """

    source: str
    retries: int = RETRIES
    max_frames: int = 0
    loop: bool = False
    serve: str = ""
    show: bool | None = None

    def __post_init__(self) -> None:
        if self.max_frames < 0 or self.retries < 0:
            raise UserError(f"--max-frames and --retries must be >= 0, but got {self.max_frames} and {self.retries}")

    def spec(self) -> SourceSpec:
        """What source names (files and folders must exist)."""
        return parse_source(self.source)


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


@contextmanager
def stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM sets stop (the run ends cleanly, outputs flushed) while inside; the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
