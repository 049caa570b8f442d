"""Benchmark of the detection app: the whole pipeline against bare session.run on the same frames, in one run.

Run from the project root: python -m benchmarks.detect [--quick] [--provider cpu|cuda] [--model M.onnx].
On a generated 640x480 video, for the small YOLO (tests/assets/yolo-small.onnx, 160x160) and the zoo's larger
YOLO exported at 640x640 (fresh weights: speed does not depend on them, and at confidence 0.001 they give many
candidates), repeated and interleaved:
  bare       session.run on frames decoded and preprocessed beforehand (the ceiling);
  sequential a naive one-thread loop: read, preprocess, run, decode + NMS (no sinks);
  app+jsonl  the app (capture thread with preprocessing, inference, decode + NMS, JSONL sink thread);
  app+video  the same with the annotated-video sink on as well;
and the postprocess (decode + NMS + mapping back) per frame at confidence 0.25 and 0.001. Prints medians, with
the process's CPU time per frame (all threads): FPS can never exceed cores * 1000 / CPU ms per frame.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgepipe.apps.detect import app
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.stream.sinks import JsonlSink, SinkWorker, VideoSink
from edgepipe.apps.stream.sources import Capture
from edgepipe.apps.stream.specs import parse_source
from edgepipe.export.data.detection import make_video
from edgepipe.runtime import load

SMALL = Path(__file__).resolve().parents[1] / "tests" / "assets" / "yolo-small.onnx"


def large_model(folder: Path, size: int) -> Path:
    """The zoo's yolo-large exported at size x size (needs the train extra)."""
    from edgepipe.export.onnx.export import export_onnx, load_source

    return export_onnx(load_source("yolo-large", (size, size), samples=2), folder / f"yolo-large-{size}.onnx").path


def decoded_frames(video: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    return frames


def bare_fps(detector: Detector, ready: list[np.ndarray]) -> float:
    session, name = detector.model.session, detector.model.inputs[0].name
    t0 = time.perf_counter()
    for x in ready:
        session.run(None, {name: x})
    return len(ready) / (time.perf_counter() - t0)


def sequential_fps(detector: Detector, video: Path, frames: int) -> float:
    """A naive loop in one thread: read a frame, preprocess, run, decode + NMS; nothing overlaps, no sinks."""
    cap = cv2.VideoCapture(str(video))
    t0, n = time.perf_counter(), 0
    while n < frames and (got := cap.read())[0]:
        detector.infer(detector.prepare(got[1]))
        n += 1
    return n / (time.perf_counter() - t0)


def app_fps(detector: Detector, video: Path, out: Path, with_video: bool, frames: int) -> float:
    capture = Capture(parse_source(str(video)), prepare=detector.prepare).open()
    sinks = [JsonlSink(out / "bench.jsonl")] + ([VideoSink(out / "annotated.mp4", capture.fps)] if with_video else [])
    summary = app.run([("", capture)], detector, SinkWorker(sinks), threading.Event(), max_frames=frames)
    return summary.fps


def with_cpu(run: Callable[[], float], frames: int) -> tuple[float, float]:
    """run() -> FPS; returns (FPS, milliseconds of this process's CPU time, all threads, per frame)."""
    before = resource.getrusage(resource.RUSAGE_SELF)
    fps = run()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return fps, cpu / frames * 1e3


def post_ms(detector: Detector, ready: list, conf: float) -> float:
    """Median ms of decode + NMS + mapping back per frame at this confidence threshold."""
    raws = [detector.model.run(p.batch)[0] for p in ready]
    from edgepipe.postprocess.decoders import decode

    settings = {**detector.settings, "conf_threshold": conf}
    times = []
    for raw, p in zip(raws, ready, strict=True):
        t0 = time.perf_counter()
        decode(detector.meta.head, raw, p.transforms, **settings)
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def bench(name: str, model_path: Path, video: Path, out: Path, provider: str, threads: int, repeats: int,
          frames: int) -> None:
    model = load(model_path, providers=provider, intra_op_threads=threads)
    detector = Detector(model, conf=0.25, iou=0.45)
    images = decoded_frames(video)[:frames]
    prepared = [detector.prepare(f) for f in images]
    ready = [p.batch for p in prepared]
    runs: dict[str, Callable[[], float]] = {
        "bare": lambda: bare_fps(detector, ready),
        "sequential": lambda: sequential_fps(detector, video, frames),
        "app+jsonl": lambda: app_fps(detector, video, out, False, frames),
        "app+video": lambda: app_fps(detector, video, out, True, frames),
    }
    rows: dict[str, list[tuple[float, float]]] = {key: [] for key in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            rows[key].append(with_cpu(fn, len(ready)))
    med = {k: (float(np.median([r[0] for r in v])), float(np.median([r[1] for r in v]))) for k, v in rows.items()}
    h, w = detector.spec.input_size
    print(f"\n{name} ({h}x{w}) on {model.providers[0]}, {len(images)} frames of 640x480, {repeats} repeats "
          f"(median FPS; ratio to bare; CPU time of the process per frame, {os.cpu_count()} cores):")
    for key, (fps, cpu) in med.items():
        print(f"  {key:<10} {fps:8.1f} FPS  {fps / med['bare'][0]:.2f}x  CPU {cpu:6.2f} ms/frame")
    for conf in (0.25, 0.001):
        print(f"  postprocess at conf {conf}: {post_ms(detector, prepared[:100], conf):.3f} ms per frame (median)")


def recall_sweep(model_path: Path, out: Path, seeds: int, provider: str) -> None:
    """Recall and precision at IoU 0.5 of the app's JSON lines (conf 0.25) on generated videos, one per seed."""
    from edgepipe.apps.detect.truth import match, read_jsonl

    detector = Detector(load(model_path, providers=provider), conf=0.25, iou=0.45)
    recalls = []
    print(f"\nrecall at IoU 0.5, conf 0.25, {model_path.name}, 200-frame 640x480 videos (seeds 100..{99 + seeds}):")
    for seed in range(100, 100 + seeds):
        video = out / f"recall-{seed}.mp4"
        truth = make_video(video, n_frames=200, seed=seed)
        capture = Capture(parse_source(str(video)), prepare=detector.prepare).open()
        app.run([("", capture)], detector, SinkWorker([JsonlSink(out / "recall.jsonl")]), threading.Event())
        m = match(read_jsonl(out / "recall.jsonl"), read_jsonl(truth), iou=0.5)
        recalls.append(m.recall)
        print(f"  seed {seed}: {m.found} of {m.truth} objects, recall {m.recall:.3f}, precision {m.precision:.3f}")
    print(f"  recall min {min(recalls):.3f}, mean {np.mean(recalls):.3f}, max {max(recalls):.3f}")


def crossing_sweep(model_path: Path, out: Path, seeds: int, provider: str) -> None:
    """Objects counted crossing the middle of generated videos (--line, per direction) against their ids."""
    from edgepipe.apps.detect.lines import Line
    from edgepipe.apps.detect.service import DetectOptions, detect
    from edgepipe.apps.detect.truth import read_jsonl, truth_crossings
    from edgepipe.apps.options import ModelOptions
    from edgepipe.apps.stream.loop import StreamOptions

    exact = 0
    print(f"\nline crossings of x = 320, {model_path.name}, 200-frame 640x480 videos (seeds 100..{99 + seeds}):")
    for seed in range(100, 100 + seeds):
        video = out / f"cross-{seed}.mp4"
        want = truth_crossings(read_jsonl(make_video(video, n_frames=200, seed=seed)), 320)
        options = DetectOptions(ModelOptions(model_path, provider), StreamOptions(str(video), show=False),
                                lines=(Line("mid", (320.0, 0.0, 320.0, 480.0)),))
        crossed = detect(options).one().crossings["mid"]
        got = {k: crossed[k] for k in want}
        exact += got == want
        print(f"  seed {seed}: truth {want}, counted {got}")
    print(f"  exact on {exact} of {seeds} videos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    parser.add_argument("--provider", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", type=Path, default=SMALL, help="the small detector (default: the test asset)")
    parser.add_argument("--large-size", type=int, default=640)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--recall-seeds", type=int, default=0, metavar="N",
                        help="only measure recall on N generated videos (no timing)")
    parser.add_argument("--crossing-seeds", type=int, default=0, metavar="N",
                        help="only count line crossings on N generated videos against their truth (no timing)")
    args = parser.parse_args()
    if args.crossing_seeds:
        with tempfile.TemporaryDirectory() as tmp:
            crossing_sweep(args.model, Path(tmp), args.crossing_seeds, args.provider)
        return
    if args.recall_seeds:
        with tempfile.TemporaryDirectory() as tmp:
            recall_sweep(args.model, Path(tmp), args.recall_seeds, args.provider)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        video = out / "bench.mp4"
        make_video(video, n_frames=100 if args.quick else 300, size=(480, 640), seed=0)
        small_frames = 100 if args.quick else 300
        bench("small YOLO", args.model, video, out, args.provider, args.threads, 3 if args.quick else 5,
              small_frames)
        if not args.skip_large:
            big = large_model(out, args.large_size)
            bench("large YOLO", big, video, out, args.provider, args.threads, 2 if args.quick else 3,
                  20 if args.quick else 40)


if __name__ == "__main__":
    main()
