"""Benchmark of the YOLO decoders (decode + NMS, one image) beside a decode-everything baseline measured interleaved.

Run from the project root: .venv/bin/python benchmarks/decode_cases.py [--quick]. Prints medians (ms) and ratios
(ours / baseline: below 1 is faster). bench_decoders is meant to join benchmarks/postprocess.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and benchmarks/postprocess.py would hide the package.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse

import numpy as np

from edgepipe.postprocess.boxes import Transform, boxes_to_original
from edgepipe.postprocess.decoders import decode
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.suppression import select
from edgepipe.runtime.bench import median_ms

COURSE_ANCHORS = np.array([(1.0, 1.5), (2.0, 2.0), (3.0, 1.5), (4.0, 5.0), (8.0, 7.0)])  # grid cells
IOU_THRESHOLD = 0.45
CONFS = (0.25, 0.001)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def random_boxes(rng: np.random.Generator, k: int, size: float) -> np.ndarray:
    """(k, 4) cx, cy, w, h in input pixels: anywhere, 4 to 200 px."""
    return np.concatenate([rng.uniform(0, size, (k, 2)), rng.uniform(4, 200, (k, 2))], axis=1)


def course_output(rng: np.random.Generator, s: int = 13, a: int = 5, c: int = 3) -> np.ndarray:
    """Raw course-head output (1, A*(5+C), S, S): 8 confident cells, background objectness logits N(-8, 1.5)."""
    raw = rng.normal(0, 1, (a, 5 + c, s, s))
    raw[:, 4] = rng.normal(-8, 1.5, (a, s, s))
    cells = rng.integers(0, s, (8, 2))
    raw[rng.integers(0, a, 8), 4, cells[:, 0], cells[:, 1]] = 4.0
    return raw.reshape(1, a * (5 + c), s, s).astype(np.float32)


def yolov5_output(rng: np.random.Generator, k: int = 25200, c: int = 80, size: float = 640) -> np.ndarray:
    """(1, K, 5+C): mostly low objectness (sigmoid of N(-8, 2)), 20 objects each seen by 15 rows."""
    out = np.concatenate(
        [random_boxes(rng, k, size), _sigmoid(rng.normal(-8, 2, (k, 1))), _sigmoid(rng.normal(-6, 2, (k, c)))], axis=1
    )
    for obj_box, cls in zip(random_boxes(rng, 20, size), rng.integers(0, c, 20), strict=True):
        rows = rng.choice(k, 15, replace=False)
        out[rows, :4] = obj_box * np.exp(rng.normal(0, 0.05, (15, 4)))
        out[rows, 4] = _sigmoid(rng.normal(2, 1, 15))
        out[rows, 5 + cls] = _sigmoid(rng.normal(3, 1, 15))
    return out[None].astype(np.float32)


def yolov8_output(rng: np.random.Generator, k: int = 8400, c: int = 80, size: float = 640) -> np.ndarray:
    """(1, 4+C, K): mostly low class scores (sigmoid of N(-9, 1.5)), 20 objects each seen by 10 anchor points."""
    out = np.concatenate([random_boxes(rng, k, size), _sigmoid(rng.normal(-9, 1.5, (k, c)))], axis=1)
    for obj_box, cls in zip(random_boxes(rng, 20, size), rng.integers(0, c, 20), strict=True):
        cols = rng.choice(k, 10, replace=False)
        out[cols, :4] = obj_box * np.exp(rng.normal(0, 0.05, (10, 4)))
        out[cols, 4 + cls] = _sigmoid(rng.normal(1, 1, 10))
    return out.T[None].astype(np.float32)


def _finish(cxcywh: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, t: Transform, conf: float) -> Detections:
    """Baselines' last step: every candidate to select, then the kept boxes to original pixels."""
    xy, half = cxcywh[:, :2], cxcywh[:, 2:] / 2
    boxes = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)
    det = select(boxes, scores.astype(np.float32), class_ids, conf, IOU_THRESHOLD)
    return Detections(boxes_to_original(det.xyxy, t), det.scores, det.class_ids)


def baseline_course(raw: np.ndarray, t: Transform, conf: float) -> Detections:
    """Decode every cell and anchor (sigmoid, softmax, boxes), then filter and NMS. raw: (1, A*(5+C), S, S)."""
    a, s = len(COURSE_ANCHORS), raw.shape[2]
    p = raw[0].reshape(a, -1, s, s).transpose(0, 2, 3, 1).reshape(a * s * s, -1)  # (A*S*S, 5+C) by anchor, row, col
    anchor, row, col = np.unravel_index(np.arange(len(p)), (a, s, s))
    probs = np.exp(p[:, 5:] - p[:, 5:].max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    cell = t.dst_size[0] / s
    xy = (_sigmoid(p[:, :2]) + np.stack([col, row], axis=1)) * cell
    wh = COURSE_ANCHORS[anchor] * cell * np.exp(p[:, 2:4])
    scores = _sigmoid(p[:, 4]) * probs.max(axis=1)
    return _finish(np.concatenate([xy, wh], axis=1), scores, probs.argmax(axis=1), t, conf)


def baseline_yolov5(out: np.ndarray, t: Transform, conf: float) -> Detections:
    """All (K, C) products objectness * class score, then the best class, filter and NMS. out: (1, K, 5+C)."""
    p = out[0]
    scores = p[:, 4:5] * p[:, 5:]  # (K, C)
    return _finish(p[:, :4], scores.max(axis=1), scores.argmax(axis=1), t, conf)


def baseline_yolov8(out: np.ndarray, t: Transform, conf: float) -> Detections:
    """Transpose the whole output to (K, 4+C) first (the common recipe), then best class, filter and NMS."""
    p = out[0].T.copy()  # (K, 4+C)
    return _finish(p[:, :4], p[:, 4:].max(axis=1), p[:, 4:].argmax(axis=1), t, conf)


def same(a: Detections, b: Detections) -> bool:
    """Equal detections up to float rounding."""
    return len(a) == len(b) and np.allclose(a.xyxy, b.xyxy, atol=1e-2) and (a.class_ids == b.class_ids).all()


def bench_decoders(quick: bool = False) -> None:
    """decode + NMS for one image per head at conf 0.25 and 0.001, against the decode-everything baselines."""
    print("\n## Decoders: decode + NMS for one image, median ms")
    rng = np.random.default_rng(0)
    t416 = Transform(416 / 640, 416 / 640, 0.0, 52.0, (480, 640), (416, 416))
    t640 = Transform(1.0, 1.0, 0.0, 80.0, (480, 640), (640, 640))
    cases = [
        ("yolo-course 13x13x5x(5+3)", "yolo-course", course_output(rng), t416, baseline_course),
        ("yolov5 (1, 25200, 85)", "yolov5", yolov5_output(rng), t640, baseline_yolov5),
        ("yolov8 (1, 84, 8400)", "yolov8", yolov8_output(rng), t640, baseline_yolov8),
    ]
    print(f"{'head':<28}{'conf':>7}{'kept':>6}{'ours':>9}{'baseline':>10}{'ratio':>8}{'same':>6}")
    for label, head, raw, t, baseline in cases:
        anchors = COURSE_ANCHORS if head == "yolo-course" else ()
        for conf in CONFS:
            def ours(raw=raw, head=head, t=t, conf=conf, anchors=anchors) -> Detections:
                return decode(head, raw, [t], conf, IOU_THRESHOLD, anchors=anchors)[0]

            def base(raw=raw, t=t, conf=conf, baseline=baseline) -> Detections:
                return baseline(raw, t, conf)

            repeats = {0.25: 300, 0.001: 60}[conf] if head != "yolo-course" else 2000
            m = median_ms({"ours": ours, "baseline": base}, repeats // 10 if quick else repeats)
            det = ours()
            print(
                f"{label:<28}{conf:>7}{len(det):>6}{m['ours']:>9.3f}{m['baseline']:>10.3f}"
                f"{m['ours'] / m['baseline']:>8.2f}{'yes' if same(det, base()) else 'NO':>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    bench_decoders(parser.parse_args().quick)


if __name__ == "__main__":
    main()
