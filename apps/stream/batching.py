"""Frames from several captures gathered into one batch: whatever is ready, waiting a short deadline for the rest."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from edgepipe.apps.stream.sources import Capture, Frame


class HasCapture(Protocol):
    capture: Capture


Source = TypeVar("Source", bound=HasCapture)


@dataclass
class Gathered(Generic[Source]):
    """One gather: the frames taken (at most one per source, in the sources' order from a rotating start), the
    sources whose capture ended, and those lost for good with the error their capture raised."""

    frames: list[tuple[Source, Frame]] = field(default_factory=list)
    ended: list[Source] = field(default_factory=list)
    lost: list[tuple[Source, Exception]] = field(default_factory=list)


class Gatherer(Generic[Source]):
    """Takes frames from the captures of several sources for one batch.

    Every capture signals one shared event when it hands a frame over, so waiting costs nothing while no source has
    a frame. A batch holds at most one frame per source (each source's frames stay in order) and at most limit
    frames; once it holds one, gather waits at most wait_s for the other sources, so a fast source never waits long
    for a slow one. The first source to look at rotates, so no source is always served last.
    """

    def __init__(self, sources: Sequence[Source], limit: int, wait_s: float) -> None:
        self.ready = threading.Event()
        for source in sources:
            source.capture.ready = self.ready
        self.limit, self.wait_s = max(1, limit), wait_s
        self._turn = 0

    def gather(self, sources: Sequence[Source], stop: threading.Event) -> Gathered[Source]:
        """Frames from sources (the ones still running) until limit, every source has given one, or the deadline;
        returns at once with what there is when stop is set or every source has ended."""
        out: Gathered[Source] = Gathered()
        waiting = list(sources[self._turn % len(sources):] + sources[: self._turn % len(sources)]) if sources else []
        self._turn += 1
        deadline = float("inf")
        while waiting and len(out.frames) < self.limit and not stop.is_set():
            self.ready.clear()  # before polling: a frame handed over meanwhile sets it again
            for source in list(waiting):
                if len(out.frames) == self.limit:
                    break
                try:
                    frame = source.capture.poll()
                except Exception as exc:  # the source is lost for good; the others go on
                    out.lost.append((source, exc))
                    waiting.remove(source)
                    continue
                if frame is not None:
                    out.frames.append((source, frame))
                    waiting.remove(source)
                elif source.capture.ended:
                    out.ended.append(source)
                    waiting.remove(source)
            if out.frames and deadline == float("inf"):
                deadline = time.perf_counter() + self.wait_s
            left = deadline - time.perf_counter()
            if not waiting or len(out.frames) == self.limit or left <= 0:
                break
            self.ready.wait(min(left, 0.1))
        return out
