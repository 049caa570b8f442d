"""The detection app's sources: parsing --source, and the capture thread (reconnects, only the newest live frame,
every file frame in order, looping a file, stopping a stalled camera)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgepipe.apps.stream.sources import Capture, SourceError
from edgepipe.apps.stream.specs import SourceSpec, parse_source
from edgepipe.postprocess.errors import UserError


def test_parse_source_kinds(tmp_path, video):
    assert parse_source("0") == SourceSpec("camera", 0)
    assert parse_source("/dev/video2") == SourceSpec("camera", "/dev/video2")
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    assert parse_source(str(video)) == SourceSpec("video", str(video))
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    folder = parse_source(str(tmp_path))
    assert folder.kind == "images" and [Path(p).name for p in folder.paths] == ["a.jpg", "b.png"]
    assert [Path(p).name for p in parse_source(str(tmp_path / "*.png")).paths] == ["b.png"]
    assert parse_source(str(tmp_path / "a.jpg")).paths == (str(tmp_path / "a.jpg"),)


@pytest.mark.parametrize(("text", "error", "message"), [
    ("missing.mp4", UserError, "not found: expected a camera index"),
    ("", ValueError, "source is empty"),
    ("nothing-*.png", ValueError, "matches no images"),
])
def test_parse_source_errors(text, error, message):
    with pytest.raises(error, match=message):
        parse_source(text)


class FakeCamera:
    """A cv2.VideoCapture stand-in: delivers `frames` numbered frames, then read() fails (an unplugged camera)."""

    def __init__(self, frames: int, start: int = 0, delay: float = 0.0) -> None:
        self.left, self.next, self.delay = frames, start, delay

    def isOpened(self) -> bool:
        return True

    def read(self):
        time.sleep(self.delay)
        if self.left == 0:
            return False, None
        self.left -= 1
        self.next += 1
        return True, np.full((8, 8, 3), self.next - 1, np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        pass


class Closed(FakeCamera):
    def isOpened(self) -> bool:
        return False


def test_live_source_reconnects_then_gives_up():
    opened = []

    def opener(target):
        opened.append(target)
        return FakeCamera(5) if len(opened) == 1 else Closed(0)

    capture = Capture(SourceSpec("camera", 0), retries=3, backoff=0.01, max_backoff=0.02, opener=opener).open()
    got = []
    with pytest.raises(SourceError, match="did not come back after 3 reconnect attempt"):
        got.extend(f.image[0, 0, 0] for f in capture.frames())
    capture.close()
    assert len(opened) == 4  # the first open and three attempts
    assert len(got) >= 1 and got == sorted(got)


def test_live_source_comes_back_after_a_drop():
    cameras = [FakeCamera(3), Closed(0), FakeCamera(4, start=100)]
    capture = Capture(SourceSpec("stream", "rtsp://x"), retries=3, backoff=0.01,
                      opener=lambda t: cameras.pop(0) if cameras else Closed(0))
    capture.open()
    seen = []
    with pytest.raises(SourceError):
        for f in capture.frames():
            seen.append(int(f.image[0, 0, 0]))
            time.sleep(0.01)
    assert capture.stats.reconnects == 1
    assert 100 in seen or 103 in seen  # frames from the reopened stream arrived


def test_live_source_keeps_only_the_newest_frame():
    capture = Capture(SourceSpec("camera", 0), retries=0, opener=lambda t: FakeCamera(200, delay=0.001)).open()
    indices = []
    with pytest.raises(SourceError):
        for f in capture.frames():
            indices.append(f.index)
            time.sleep(0.02)  # a slow model
    assert capture.stats.dropped > 50
    assert indices == sorted(indices) and len(indices) + capture.stats.dropped == capture.stats.read
    assert max(np.diff(indices)) > 1  # frames were skipped, not queued


def test_file_source_delivers_every_frame_in_order(video):
    capture = Capture(parse_source(str(video)), queue_size=2).open()
    indices = []
    for f in capture.frames():
        indices.append(f.index)
        time.sleep(0.002)
    capture.close()
    assert indices == list(range(120)) and capture.stats.dropped == 0


def test_loop_plays_a_file_again_with_frame_numbers_going_on(video):
    capture = Capture(parse_source(str(video)), loop=True).open()
    frames = []
    for f in capture.frames():
        frames.append(f)
        if len(frames) == 250:
            break
    capture.close()
    assert [f.index for f in frames] == list(range(250))  # the 120-frame clip, twice and then some
    assert np.array_equal(frames[0].image, frames[120].image) and frames[120].time == pytest.approx(4.0)


def test_stop_event_ends_a_stalled_live_source():
    stop = threading.Event()
    capture = Capture(SourceSpec("camera", 0), opener=lambda t: FakeCamera(10**9, delay=0.5)).open()
    threading.Timer(0.3, stop.set).start()
    t0 = time.perf_counter()
    frames = list(capture.frames(stop))  # a frame each 0.5 s: at most one before the stop
    capture.close()
    assert len(frames) <= 1 and time.perf_counter() - t0 < 2.0
