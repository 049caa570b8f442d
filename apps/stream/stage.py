"""Stage: one step of a camera app's pipeline in a thread of its own, fed through a bounded queue, in order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Job = TypeVar("Job")


class Stage(Generic[Job]):
    """Runs handle(job) for each submitted job, in order, in its own thread.

    submit() blocks when queue_size jobs are waiting (nothing is dropped). An error raised by handle is raised again
    from the next submit() or from close(); the jobs still queued after it are drained unhandled, so submit() never
    blocks on a failed stage. close() handles what is queued, then stops the thread.
    """

    def __init__(self, name: str, handle: Callable[[Job], None], queue_size: int = 8) -> None:
        self._handle = handle
        self._queue: queue.Queue[tuple[Job] | None] = queue.Queue(maxsize=queue_size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        self.raise_error()
        self._queue.put((job,))

    def close(self) -> None:
        """Handle what is queued and stop; an error of the stage is raised here at the latest."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self.raise_error()

    def fail(self, error: BaseException) -> None:
        """Record an error of the stage's own (the first one is kept and raised)."""
        self._error = self._error or error

    def raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._handle(job[0])
            except Exception as exc:
                self.fail(exc)
