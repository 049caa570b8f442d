"""Benchmark of postprocess: IoU, NMS and the YOLO decoders, beside OpenCV measured in the same run.

Run from the project root: python -m benchmarks.postprocess [--quick]. Prints medians (ms) and ratios;
results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np

from postprocess.boxes import Transform
from postprocess.decode import decode
from postprocess.iou import box_iou
from postprocess.nms import batched_nms, nms


def median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Run the functions interleaved (one call each per round) and return each one's median in ms."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: float(np.median(t)) for name, t in times.items()}


def candidates(rng: np.random.Generator, n: int, regime: str, size: float = 640.0):
    """n boxes (xyxy), scores and 3 class ids: clustered around 30 objects, or uniform random."""
    if regime == "clustered":
        centers = rng.uniform(0, size - 100, (30, 2))
        wh = rng.uniform(20, 100, (30, 2))
        pick = rng.integers(0, 30, n)
        xy = centers[pick] + rng.normal(0, 3, (n, 2))
        b = np.concatenate([xy, xy + wh[pick] + rng.normal(0, 3, (n, 2))], 1)
    else:
        xy = rng.uniform(0, size, (n, 2))
        b = np.concatenate([xy, xy + rng.uniform(2, 40, (n, 2))], 1)
    return b.astype(np.float32), rng.uniform(0, 1, n).astype(np.float32), rng.integers(0, 3, n)


def bench_nms(quick: bool) -> None:
    print("## IoU and NMS (iou_threshold 0.5), median ms")
    print(f"{'regime':<10}{'N':>7}{'box_iou':>10}{'nms':>9}{'batched':>9}{'cv list':>9}{'cv array':>10}"
          f"{'cv batch':>10}{'nms/cv best':>13}{'batched/nms':>13}")
    for regime in ("clustered", "uniform"):
        for n in (100, 1000, 10000):
            rng = np.random.default_rng(0)
            b, s, c = candidates(rng, n, regime)
            xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
            repeats = 5 if n == 10000 else (30 if quick else 200)
            if n == 10000 and regime == "uniform":
                repeats = 3
            fns = {
                "nms": lambda b=b, s=s: nms(b, s, 0.5),
                "batched": lambda b=b, s=s, c=c: batched_nms(b, s, c, 0.5),
                "cv list": lambda x=xywh, s=s: cv2.dnn.NMSBoxes(x.tolist(), s.tolist(), 0.0, 0.5),
                "cv array": lambda x=xywh, s=s: cv2.dnn.NMSBoxes(x, s, 0.0, 0.5),
                "cv batch": lambda x=xywh, s=s, c=c: cv2.dnn.NMSBoxesBatched(
                    x.tolist(), s.tolist(), c.tolist(), 0.0, 0.5
                ),
            }
            if n <= 1000:
                fns["box_iou"] = lambda b=b: box_iou(b, b)
            t = median_ms(fns, repeats)
            best_cv = min(t["cv list"], t["cv array"])
            iou = f"{t['box_iou']:.3f}" if "box_iou" in t else "-"
            print(f"{regime:<10}{n:>7}{iou:>10}{t['nms']:>9.3f}{t['batched']:>9.3f}{t['cv list']:>9.3f}"
                  f"{t['cv array']:>10.3f}{t['cv batch']:>10.3f}{t['nms'] / best_cv:>13.2f}"
                  f"{t['batched'] / t['nms']:>13.2f}")


def course_raw(rng: np.random.Generator, s: int = 13, a: int = 5, c: int = 3) -> np.ndarray:
    """Raw course-head output (1, A*(5+C), S, S): a handful of confident cells, the rest background."""
    raw = rng.normal(0, 1, (1, a, 5 + c, s, s)).astype(np.float32)
    raw[:, :, 4] = -6.0
    cells = rng.integers(0, s, (8, 2))
    raw[0, rng.integers(0, a, 8), 4, cells[:, 0], cells[:, 1]] = 4.0
    return raw.reshape(1, a * (5 + c), s, s)


def bench_decoders(quick: bool) -> None:
    print("\n## Decoders: decode + NMS for one image, median ms")
    rng = np.random.default_rng(0)
    anchors = [(1.0, 1.5), (2.0, 2.0), (3.0, 1.5), (4.0, 5.0), (8.0, 7.0)]
    t416 = Transform(416 / 640, 416 / 640, 0.0, 52.0, (480, 640), (416, 416))
    t640 = Transform(1.0, 1.0, 0.0, 80.0, (480, 640), (640, 640))
    course = course_raw(rng)
    v5 = rng.uniform(0, 1, (1, 25200, 85)).astype(np.float32)
    v5[..., :2] *= 640
    v5[..., 2:4] *= 100
    v5[..., 4] **= 8  # mostly low objectness, as a real model gives
    v8 = rng.uniform(0, 1, (1, 84, 8400)).astype(np.float32)
    v8[:, :2] *= 640
    v8[:, 2:4] *= 100
    v8[:, 4:] **= 8
    repeats = 30 if quick else 200
    rows = [
        ("yolo-course 13x13x5x(5+3)", "yolo-course", course, t416, 3),
        ("yolov5 (1, 25200, 85)", "yolov5", v5, t640, 80),
        ("yolov8 (1, 84, 8400)", "yolov8", v8, t640, 80),
    ]
    print(f"{'head':<28}{'conf 0.25':>11}{'conf 0.001':>12}")
    for label, head, raw, t, nc in rows:
        names = tuple(str(i) for i in range(nc))
        fns = {
            conf: (lambda conf=conf, head=head, raw=raw, t=t, names=names: decode(
                head, raw, [t], conf_threshold=conf, iou_threshold=0.45, class_names=names,
                anchors=anchors if head == "yolo-course" else None))
            for conf in (0.25, 0.001)
        }
        m = median_ms(fns, repeats)
        print(f"{label:<28}{m[0.25]:>11.3f}{m[0.001]:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    bench_nms(args.quick)
    bench_decoders(args.quick)


if __name__ == "__main__":
    main()
