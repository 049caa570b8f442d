"""Postprocess at conf 0.001: YOLOv8n-shaped outputs (8400 anchor points, 80 classes) with N candidates over the
threshold, decoded with NMS started on the best PREFIX_MIN x max_det candidates (the code) against NMS over all of
them (the baseline), interleaved; the two keep exactly the same boxes.

Run from the project root: python -m benchmarks.decode_scaling [--runs 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from edgepipe.postprocess import suppression
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode

ANCHORS, CLASSES, OBJECTS = 8400, 80, 40
CANDIDATES = (300, 1000, 3000, 8000)


def yolov8_output(n_candidates: int, seed: int = 0) -> np.ndarray:
    """(1, 84, 8400) float32: boxes jittered around OBJECTS objects, every score under 1e-4 except one class of
    n_candidates anchor points, which scores in [0.001, 0.9] (cubed: most of them low, as a trained model's)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((1, 4 + CLASSES, ANCHORS), np.float32)
    centers = rng.uniform(50, 590, (OBJECTS, 2))
    sizes = rng.uniform(20, 200, (OBJECTS, 2))
    owner = rng.integers(0, OBJECTS, ANCHORS)
    out[0, 0:2] = (centers[owner] + rng.normal(0, 8, (ANCHORS, 2))).T
    out[0, 2:4] = (sizes[owner] * rng.uniform(0.8, 1.2, (ANCHORS, 2))).T
    scores = rng.uniform(0, 1e-4, (CLASSES, ANCHORS)).astype(np.float32)
    chosen = rng.choice(ANCHORS, n_candidates, replace=False)
    scores[rng.integers(0, CLASSES, n_candidates), chosen] = rng.uniform(0.1, 0.965, n_candidates) ** 3
    out[0, 4:] = scores
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--conf", type=float, default=0.001)
    args = parser.parse_args()
    transform = [Transform(1.0, 1.0, 0.0, 0.0, (640, 640), (640, 640))]
    prefix = suppression.PREFIX_MIN
    print(f"decode('yolov8') at conf {args.conf}, iou 0.7, max_det 300; median ms of {args.runs} interleaved runs")
    print(f"{'candidates':>10} {'kept':>5} {'all at once':>12} {'best first':>11} {'ratio':>6}")
    for n in CANDIDATES:
        out = yolov8_output(n)
        times: dict[str, list[float]] = {"all": [], "prefix": []}
        kept = {}
        for _ in range(args.runs):
            for name, first in (("all", 10**9), ("prefix", prefix)):
                suppression.PREFIX_MIN = first
                t0 = time.perf_counter()
                found = decode("yolov8", out, transform, args.conf, 0.7, 300)[0]
                times[name].append((time.perf_counter() - t0) * 1e3)
                kept[name] = found
        suppression.PREFIX_MIN = prefix
        same = np.array_equal(kept["all"].xyxy, kept["prefix"].xyxy)
        if not same:
            raise SystemExit(f"the two kept different boxes at {n} candidates")
        a, p = np.median(times["all"]), np.median(times["prefix"])
        print(f"{n:>10} {len(kept['prefix']):>5} {a:>12.2f} {p:>11.2f} {a / p:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
