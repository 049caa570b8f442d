"""Soak run of the detection app: 10,000 frames through every sink, resident memory sampled along the way.

Run from the project root: python -m benchmarks.soak [--frames 10000] [--model M.onnx].
A generated 640x480 clip is played in a loop (Capture(loop=True)) until --frames frames; the app writes JSON Lines, an
annotated video and serves the browser view (one client reading the stream), tracking objects and counting the
ones crossing the middle line (the tracker's state must not grow either). Prints the resident set size (RSS)
every 1,000 frames and its growth after the warm-up (the first 1,000 frames): the target is at most 5%.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import urllib.request
from pathlib import Path

from edgepipe.apps.detect import app
from edgepipe.apps.detect.lines import Line
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.stream.sinks import Item, JsonlSink, SinkWorker, VideoSink, ViewSink
from edgepipe.apps.stream.sources import Capture
from edgepipe.apps.stream.specs import SourceSpec
from edgepipe.apps.stream.web import LiveView
from edgepipe.export.data.detection import make_video
from edgepipe.runtime import load

SMALL = Path(__file__).resolve().parents[1] / "tests" / "assets" / "yolo-small.onnx"
PAGE = 4096


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


class MemorySink:
    """Samples RSS every `every` frames (in the sink thread)."""

    overlay = False

    def __init__(self, every: int) -> None:
        self.every, self.samples = every, []

    def write(self, item: Item, annotated) -> None:
        if item.frame.index % self.every == 0:
            self.samples.append((item.frame.index, rss_mb()))

    def close(self) -> None:
        self.samples.append((-1, rss_mb()))


def read_stream(url: str, stop: threading.Event) -> None:
    """A browser stand-in: reads the MJPEG stream until stop."""
    try:
        with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as r:
            while not stop.is_set() and r.read(65536):
                pass
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--model", type=Path, default=SMALL)
    parser.add_argument("--warmup", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        clip = out / "clip.mp4"
        make_video(clip, n_frames=300, seed=0)
        detector = Detector(load(args.model, providers="cpu"))
        capture = Capture(SourceSpec("video", str(clip)), prepare=detector.prepare, loop=True).open()
        view = LiveView("127.0.0.1", 0, title="soak").start()
        stop = threading.Event()
        reader = threading.Thread(target=read_stream, args=(view.url, stop), daemon=True)
        reader.start()
        memory = MemorySink(1000)
        sinks = [JsonlSink(out / "soak.jsonl"), VideoSink(out / "soak.avi", 30.0), ViewSink(view), memory]
        summary = app.run([("", capture)], detector, SinkWorker(sinks), threading.Event(), max_frames=args.frames,
                          lines=[Line("mid", (320.0, 0.0, 320.0, 480.0))]).one()
        stop.set()
    print(f"{summary.frames} frames in {summary.seconds:.0f} s ({summary.fps:.0f} FPS), sinks: JSONL, video, browser; "
          f"line crossings {summary.crossings['mid']}")
    for index, mb in memory.samples:
        print(f"  frame {index if index >= 0 else summary.frames:>6}: RSS {mb:7.1f} MB")
    base = next(mb for index, mb in memory.samples if index >= args.warmup)
    peak = max(mb for index, mb in memory.samples if index < 0 or index >= args.warmup)
    print(f"RSS after warm-up ({args.warmup} frames) {base:.1f} MB, highest after it {peak:.1f} MB: "
          f"growth {100 * (peak - base) / base:+.1f}% (target <= 5%)")


if __name__ == "__main__":
    main()
