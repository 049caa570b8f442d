"""Progress on stderr: a tqdm bar on a terminal, a plain line every few seconds elsewhere (CI logs), none if quiet."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")
PLAIN_INTERVAL_S = 10.0  # seconds between two plain lines when stderr is not a terminal
# Set by the command line on Ctrl-C or SIGTERM (apps/cli.py) until the command ends. A KeyboardInterrupt raised while
# a native library runs can be swallowed there (seen while timing onnxruntime sessions on a loaded machine): the
# work would go on, so the next step counted in the main thread raises it again.
INTERRUPTED = threading.Event()


class Progress:
    """Work done out of total, shown as it goes; a context manager that closes itself.

    total: the items to do (0: not known beforehand; the count alone is shown). enabled False (--quiet): nothing
    is written. stream: stderr unless given; a terminal gets a tqdm bar (elapsed and remaining time), anything else (a
    CI log, a pipe) a plain line "desc: n/total (p%), s elapsed, about s left" at most every interval seconds (the
    time left at the rate so far, once something is done), and one when the work ends. update(n,
    **shown) adds n and shows the values given (e.g. loss=0.12).
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: TextIO | None = None,
                 interval: float = PLAIN_INTERVAL_S) -> None:
        self.total, self.desc, self.interval = max(0, int(total)), desc, interval
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.shown: dict[str, object] = {}
        self._start = self._last = time.monotonic()
        self._closed = not enabled
        self._bar = None
        if enabled and _is_terminal(self.stream):
            self._bar = tqdm(total=self.total or None, desc=desc, file=self.stream, dynamic_ncols=True, leave=True)
        elif enabled:
            self._line()

    def update(self, n: int = 1, **shown: object) -> None:
        """Count n more items done; shown: values to show beside the count (floats with 4 decimals). Raises
        KeyboardInterrupt in the main thread once the command was interrupted (INTERRUPTED)."""
        if INTERRUPTED.is_set() and threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt
        self.done += n
        self.shown.update(shown)
        if self._closed:
            return
        if self._bar is not None:
            if shown:
                self._bar.set_postfix({k: _text(v) for k, v in self.shown.items()}, refresh=False)
            self._bar.update(n)
        elif time.monotonic() - self._last >= self.interval:
            self._line()

    def close(self) -> None:
        """End the bar, or write the last plain line; later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        else:
            self._line()

    def _line(self) -> None:
        self._last = time.monotonic()
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        extra = "".join(f", {k} {_text(v)}" for k, v in self.shown.items())
        elapsed = self._last - self._start
        left = elapsed * (self.total - self.done) / self.done if 0 < self.done < self.total else 0.0
        left_text = f", about {left:.0f} s left" if left else ""
        print(f"{self.desc}: {self.done}/{self.total}{share}{extra}, {elapsed:.0f} s elapsed{left_text}",
              file=self.stream, flush=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int, desc: str, enabled: bool = True) -> Iterator[T]:
    """items, counted on a Progress of total as they are taken."""
    with Progress(total, desc, enabled) as progress:
        for item in items:
            yield item
            progress.update()


def duration(seconds: float) -> str:
    """Seconds as a person reads them: "42 s", "12 min 5 s", "1 h 3 min"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _text(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
