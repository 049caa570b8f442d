"""Benchmark of 1:K identify over 128-d galleries, beside a naive numpy baseline measured interleaved in the same run.

Run from the project root: .venv/bin/python benchmarks/identify.py [--quick]. Prints median and p90 (ms) of one
query against G = 1,000, 10,000 and 100,000 enrolled embeddings, and ratios (ours / naive: below 1 is faster);
then the dot-product timings that choose between einsum and matmul (postprocess.embeddings.EINSUM_MAX_QUERIES), and
the int8 first pass against the float32 one from 1,000 to 1,000,000 rows (postprocess.quantized.INT8_MIN_ROWS).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and benchmarks/postprocess.py would hide the package.
if Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import time
from collections.abc import Callable

import numpy as np

from edgepipe.postprocess.embeddings import Gallery, identify, l2_normalize
from edgepipe.postprocess.quantized import INT8_MIN_ROWS

DIM = 128
SIZES = (1_000, 10_000, 100_000)
TARGET_MS = 5.0  # the requirement: p50 of one query against 100,000 embeddings
THRESHOLD = 1.0  # squared L2 between unit vectors


def timings_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, np.ndarray]:
    """Run the functions interleaved (one call each per round); return each one's times in ms, (repeats,)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {name: np.asarray(t) for name, t in times.items()}


def enrolled(g: int, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A gallery (g, DIM) float32 of unit vectors, g labels (10 rows per person), and one (1, DIM) query that is a
    noisy copy of row g // 2."""
    rng = np.random.default_rng(seed)
    gallery = l2_normalize(rng.normal(size=(g, DIM)))
    labels = [f"person{i // 10}" for i in range(g)]
    query = l2_normalize(gallery[g // 2] + rng.normal(0, 0.03, DIM))[None, :]
    return gallery, labels, query


def naive_identify(query: np.ndarray, gallery: np.ndarray, labels: list[str], k: int) -> list[str]:
    """Baseline: Euclidean norm of the whole difference, then a full sort. query: (DIM,), gallery: (G, DIM)."""
    d = np.linalg.norm(gallery - query, axis=1)
    return [labels[i] for i in np.argsort(d, kind="stable")[:k]]


def repeats_for(g: int, quick: bool) -> int:
    """Rounds per size: many for a stable median on a busy machine, fewer where the baseline takes tens of ms."""
    full = {1_000: 2000, 10_000: 500, 100_000: 150}[g]
    return max(10, full // 10) if quick else full


def bench_identify(quick: bool) -> None:
    """identify with an enrolled Gallery and with the plain array, against the naive baseline, one query."""
    print("## identify, one query, 128-d float32 unit vectors, ms (median / p90)")
    print(f"{'G':>8}{'k':>3}{'enrolled':>17}{'array':>17}{'naive':>17}{'enr/naive':>11}{'arr/naive':>11}")
    verdict = ""
    for g in SIZES:
        gallery, labels, query = enrolled(g)
        enrolled_gallery = Gallery(gallery)
        for k in (1, 5):
            ours = identify(query, enrolled_gallery, labels, THRESHOLD, k=k)[0]
            if list(ours.labels) != naive_identify(query[0], gallery, labels, k):
                raise SystemExit(f"identify and the naive baseline disagree at G = {g}, k = {k}")
            t = timings_ms(
                {
                    "enrolled": lambda eg=enrolled_gallery, la=labels, q=query, k=k: identify(q, eg, la, THRESHOLD, k),
                    "array": lambda ga=gallery, la=labels, q=query, k=k: identify(q, ga, la, THRESHOLD, k),
                    "naive": lambda ga=gallery, la=labels, q=query, k=k: naive_identify(q[0], ga, la, k),
                },
                repeats_for(g, quick),
            )
            med = {name: float(np.median(v)) for name, v in t.items()}
            cells = "".join(f"{med[n]:>8.3f} / {np.percentile(t[n], 90):>6.3f}" for n in ("enrolled", "array", "naive"))
            ratios = f"{med['enrolled'] / med['naive']:>11.3f}{med['array'] / med['naive']:>11.3f}"
            print(f"{g:>8}{k:>3}{cells}{ratios}")
            if g == SIZES[-1] and k == 1:
                verdict = "meets" if med["enrolled"] <= TARGET_MS else "MISSES"
                verdict = (
                    f"enrolled p50 at G = {g}, k = 1: {med['enrolled']:.3f} ms, {verdict} the {TARGET_MS} ms target"
                )
    print(verdict)


def bench_dot(quick: bool) -> None:
    """(Q, DIM) x (G, DIM) dot products: numpy's einsum against matmul (OpenBLAS), G = 100,000."""
    g = SIZES[-1]
    gallery = enrolled(g)[0]
    rng = np.random.default_rng(1)
    print(f"\n## dot products against G = {g} rows, median ms (chooses EINSUM_MAX_QUERIES)")
    print(f"{'Q':>5}{'einsum':>10}{'matmul':>10}{'ein/mat':>9}")
    for q in (1, 2, 4, 8, 16, 64):
        queries = l2_normalize(rng.normal(size=(q, DIM)))
        t = timings_ms(
            {
                "einsum": lambda x=queries: np.einsum("qd,gd->qg", x, gallery),
                "matmul": lambda x=queries: x @ gallery.T,
            },
            max(5, (60 if quick else 300) // q),
        )
        med = {name: float(np.median(v)) for name, v in t.items()}
        print(f"{q:>5}{med['einsum']:>10.3f}{med['matmul']:>10.3f}{med['einsum'] / med['matmul']:>9.2f}")


def bench_int8(quick: bool) -> None:
    """identify's first pass on the int8 copy (quantized.py) against the float32 pass, one query, k = 1."""
    print(f"\n## int8 first pass against float32, one query, k = 1, median ms (INT8_MIN_ROWS = {INT8_MIN_ROWS})")
    print(f"{'G':>10}{'float32':>10}{'int8':>10}{'int8/f32':>10}")
    for g in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000):
        gallery, labels, query = enrolled(g)
        plain, coded = Gallery(gallery, quantize=False), Gallery(gallery, quantize=True)
        if identify(query, plain, labels, THRESHOLD) != identify(query, coded, labels, THRESHOLD):
            raise SystemExit(f"the int8 and float32 first passes disagree at G = {g}")
        t = timings_ms(
            {
                "float32": lambda p=plain, la=labels, q=query: identify(q, p, la, THRESHOLD),
                "int8": lambda c=coded, la=labels, q=query: identify(q, c, la, THRESHOLD),
            },
            max(10, (3_000_000 if not quick else 300_000) // g),
        )
        med = {name: float(np.median(v)) for name, v in t.items()}
        print(f"{g:>10,}{med['float32']:>10.3f}{med['int8']:>10.3f}{med['int8'] / med['float32']:>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    bench_identify(args.quick)
    bench_dot(args.quick)
    bench_int8(args.quick)


if __name__ == "__main__":
    main()
