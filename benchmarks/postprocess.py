"""Benchmark of postprocess: IoU, NMS and the YOLO decoders, beside baselines measured interleaved in the same run.

Run from the project root: .venv/bin/python benchmarks/postprocess.py [--quick]. Prints medians (ms) and ratios
(ours / baseline: below 1 is faster); the numbers go in docs/benchmarks.md. One function per section, called by main.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and this file's name would hide the postprocess package.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse

import cv2
import numpy as np

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.iou import box_iou
from edgepipe.postprocess.suppression import batched_nms, nms
from edgepipe.runtime.bench import median_ms

SIZES = (100, 1_000, 10_000)
REGIMES = ("clustered", "uniform")
IOU_THRESHOLD = 0.5


def candidates(n: int, regime: str, size: float = 640.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n detector candidates: boxes (n, 4) float32 xyxy, scores (n,) float32, class ids (n,) int64 of 80 classes.

    clustered: jittered copies of 30 objects, each object one class (most boxes suppressed).
    uniform: small boxes anywhere, each of a random class (most boxes kept).
    """
    rng = np.random.default_rng(0)
    if regime == "clustered":
        corner, wh, cls = rng.uniform(0, size - 100, (30, 2)), rng.uniform(20, 100, (30, 2)), rng.integers(0, 80, 30)
        pick = rng.integers(0, 30, n)
        xy = corner[pick] + rng.normal(0, 3, (n, 2))
        boxes = np.concatenate([xy, xy + wh[pick] + rng.normal(0, 3, (n, 2))], 1)
        class_ids = cls[pick]
    else:
        xy = rng.uniform(0, size, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(2, 40, (n, 2))], 1)
        class_ids = rng.integers(0, 80, n)
    return boxes.astype(np.float32), rng.uniform(0, 1, n).astype(np.float32), class_ids


def whole_matrix_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Baseline: torchvision's box_iou formula in numpy on whole (N, M) temporaries. a: (N, 4), b: (M, 4) xyxy."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def numpy_loop_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Baseline: the plain numpy greedy loop (Fast R-CNN's py_cpu_nms). boxes: (N, 4) float32 xyxy."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        order = rest[inter <= iou_threshold * (areas[i] + areas[rest] - inter)]
    return np.asarray(keep, dtype=np.int64)


def repeats_for(n: int, regime: str, quick: bool) -> int:
    """Rounds per measurement: many for a stable median on a busy machine, fewer where one round takes seconds."""
    full = {100: 1000, 1_000: 300, 10_000: 5 if regime == "uniform" else 30}[n]
    return max(3, full // 10) if quick else full


def bench_iou(quick: bool) -> None:
    """box_iou (N, N) against the whole-matrix numpy formula."""
    print("## IoU matrix (N x N), median ms")
    print(f"{'regime':<10}{'N':>7}{'box_iou':>10}{'whole':>10}{'ratio':>8}")
    for regime in REGIMES:
        for n in SIZES:
            b = candidates(n, regime)[0]
            fns = {"box_iou": lambda b=b: box_iou(b, b)}
            if n < 10_000:  # 10,000 x 10,000 whole-matrix temporaries need gigabytes
                fns["whole"] = lambda b=b: whole_matrix_iou(b, b)
            t = median_ms(fns, 3 if n == 10_000 else repeats_for(n, regime, quick) // 3)
            whole = f"{t['whole']:>10.3f}{t['box_iou'] / t['whole']:>8.2f}" if "whole" in t else f"{'-':>10}{'-':>8}"
            print(f"{regime:<10}{n:>7}{t['box_iou']:>10.3f}{whole}")


def bench_nms(quick: bool) -> None:
    """nms and batched_nms against OpenCV (prepared lists, ndarrays, batched) and the numpy loop."""
    print(f"\n## NMS (iou_threshold {IOU_THRESHOLD}, 80 classes), median ms")
    print(
        f"{'regime':<10}{'N':>7}{'kept':>6}{'nms':>9}{'cv list':>9}{'cv array':>10}{'numpy':>9}{'batched':>9}"
        f"{'cv batch':>10}{'nms/cv':>8}{'nms/np':>8}{'bat/nms':>9}{'bat/cvb':>9}"
    )
    for regime in REGIMES:
        for n in SIZES:
            b, s, c = candidates(n, regime)
            xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
            lists = xywh.tolist(), s.tolist(), c.tolist()  # prepared outside the timing: OpenCV's best call
            fns = {
                "nms": lambda b=b, s=s: nms(b, s, IOU_THRESHOLD),
                "cv list": lambda x=lists: cv2.dnn.NMSBoxes(x[0], x[1], 0.0, IOU_THRESHOLD),
                "cv array": lambda x=xywh, s=s: cv2.dnn.NMSBoxes(x, s, 0.0, IOU_THRESHOLD),
                "numpy": lambda b=b, s=s: numpy_loop_nms(b, s, IOU_THRESHOLD),
                "batched": lambda b=b, s=s, c=c: batched_nms(b, s, c, IOU_THRESHOLD),
                "cv batch": lambda x=lists: cv2.dnn.NMSBoxesBatched(x[0], x[1], x[2], 0.0, IOU_THRESHOLD),
            }
            t = median_ms(fns, repeats_for(n, regime, quick))
            kept = len(nms(b, s, IOU_THRESHOLD))
            print(
                f"{regime:<10}{n:>7}{kept:>6}{t['nms']:>9.3f}{t['cv list']:>9.3f}{t['cv array']:>10.3f}"
                f"{t['numpy']:>9.3f}{t['batched']:>9.3f}{t['cv batch']:>10.3f}"
                f"{t['nms'] / min(t['cv list'], t['cv array']):>8.2f}{t['nms'] / t['numpy']:>8.2f}"
                f"{t['batched'] / t['nms']:>9.2f}{t['batched'] / t['cv batch']:>9.2f}"
            )


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
                anchors=anchors if head == "yolo-course" else ()))
            for conf in (0.25, 0.001)
        }
        m = median_ms(fns, repeats)
        print(f"{label:<28}{m[0.25]:>11.3f}{m[0.001]:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # ours runs on one thread too
    bench_iou(args.quick)
    bench_nms(args.quick)
    bench_decoders(args.quick)


if __name__ == "__main__":
    main()
