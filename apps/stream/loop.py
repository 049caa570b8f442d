"""The camera apps' frame loop: a step per captured frame, its Item to the sinks, a clean stop however it ends."""

from __future__ import annotations

import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgepipe.apps.stream.sinks import Item, SinkWorker
from edgepipe.apps.stream.sources import RETRIES, Capture, Frame
from edgepipe.apps.stream.specs import SOURCE_NAME, SourceSpec, parse_source
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class StreamOptions:
    """Where a camera app's frames come from and where its live view goes.

    sources: one source or several, each as on the command line (a camera index, /dev/videoN, a video file, an
    image, a folder, a glob or a stream URL), optionally named: NAME=SOURCE. retries: reconnect attempts for a lost
    camera or stream. max_frames: stop each source after this many (0: no limit). loop: play video files again and
    again. serve: "HOST:PORT" of the browser view ("" for none). show: a window (None: when a display is present).
    """

    sources: str | Sequence[str]
    retries: int = RETRIES
    max_frames: int = 0
    loop: bool = False
    serve: str = ""
    show: bool | None = None

    def __post_init__(self) -> None:
        sources = (self.sources,) if isinstance(self.sources, str) else tuple(str(s) for s in self.sources)
        if not sources:
            raise UserError("no source given: pass --source (or --sources FILE)")
        object.__setattr__(self, "sources", sources)
        if self.max_frames < 0 or self.retries < 0:
            raise UserError(f"--max-frames and --retries must be >= 0, but got {self.max_frames} and {self.retries}")
        names = [name for name, _ in self.named()]
        if len(set(names)) != len(names):
            raise UserError(f"source names must differ, but got {names}: name them NAME=SOURCE")

    def named(self) -> list[tuple[str, str]]:
        """(name, source text) of each source. An unnamed source is "" when it is the only one, else sourceK by its
        position (K from 1)."""
        out = []
        for k, text in enumerate(self.sources, 1):
            name, source = split_name(text)
            out.append((name or ("" if len(self.sources) == 1 else f"source{k}"), source))
        return out

    def spec(self) -> SourceSpec:
        """What the only source names (files and folders must exist)."""
        if len(self.sources) != 1:
            raise UserError(f"this app reads one source, but got {len(self.sources)}: {', '.join(self.sources)}")
        return parse_source(self.named()[0][1])


def split_name(text: str) -> tuple[str, str]:
    """"NAME=SOURCE" -> (NAME, SOURCE); anything else (a URL, a path that exists) -> ("", text)."""
    name, sep, source = text.partition("=")
    if sep and SOURCE_NAME.fullmatch(name) and not Path(text).exists():
        return name, source
    return "", text


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
