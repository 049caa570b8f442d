"""Latency measurement shared by `edgepipe bench` and `edgepipe select`: interleaved runs, percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.progress import Progress
from edgepipe.runtime.session import Model


@dataclass(frozen=True)
class Latency:
    """Milliseconds per call over the timed runs, and images per second at the median."""

    name: str
    batch: int
    runs: int
    p50: float
    p90: float
    p99: float
    throughput: float

    def as_dict(self) -> dict[str, float | int | str]:
        return {"name": self.name, "batch": self.batch, "runs": self.runs, "p50_ms": round(self.p50, 4),
                "p90_ms": round(self.p90, 4), "p99_ms": round(self.p99, 4),
                "images_per_s": round(self.throughput, 1)}


def measure(
    fns: dict[str, Callable[[], object]], batch: int, runs: int, warmup: int, progress: bool = False
) -> dict[str, Latency]:
    """Time each function `runs` times after `warmup` calls, interleaved (one call of each per round) so a slow
    phase of the machine hits all of them alike. Returns a Latency per name."""
    if runs < 1:
        raise UserError(f"runs must be >= 1, but got {runs}")
    if warmup < 0:
        raise UserError(f"warmup must be >= 0, but got {warmup}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    with Progress(runs, "timing", progress) as bar:
        for _ in range(runs):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t0) * 1e3)
            bar.update()
    result = {}
    for name, t in times.items():
        p50, p90, p99 = np.percentile(t, [50, 90, 99])
        result[name] = Latency(name, batch, runs, float(p50), float(p90), float(p99), batch / float(p50) * 1e3)
    return result


def median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median milliseconds of each function over `repeats` interleaved rounds (the benchmark scripts' timer)."""
    return {name: lat.p50 for name, lat in measure(fns, 1, max(1, repeats), 0).items()}


def random_inputs(model: Model, batch: int, rng: np.random.Generator,
                  size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """One array per input of the model, its concrete shape at this batch (size: (H, W) for dynamic-size inputs):
    uniform in [0, 1) for float inputs, whole pixel values 0..255 for uint8 frames."""
    shapes = model.input_shapes(batch, size)
    return [rng.integers(0, 256, s, dtype=np.uint8) if spec.dtype == np.uint8 else
            rng.uniform(0, 1, s).astype(spec.dtype) for s, spec in zip(shapes, model.inputs, strict=True)]
