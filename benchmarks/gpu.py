"""GPU check for the GPU machine, one call: CUDA really runs, its outputs match the CPU's, IO binding against numpy.

Run there (see ../shared/GPU.md for putting onnxruntime-gpu on PYTHONPATH) from the project root:
    python3 -m benchmarks.gpu [--model tests/assets/yolo-small.onnx] [--runs 200]
It runs on CPU-only machines too (then every "cuda" row is the CPU provider), which is how it is tested here.
For batch 1 and 32 it prints p50 ms of:
  numpy      session.run with numpy in and out (the host copies every call);
  bind       IO binding (runtime's Binding): the bound input on the device updated in place from numpy each
             call, the output bound to the device and copied back each call;
  resident   the input already on the device and the output left there (the ceiling of a device pipeline).
and the largest |CUDA - CPU| output difference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgepipe.runtime import Model, load

SMALL = Path(__file__).resolve().parents[1] / "tests" / "assets" / "yolo-small.onnx"


def load_on(path: Path, provider: str) -> Model:
    """The runtime's own load (it calls preload_dlls for CUDA); on a CPU-only machine "cuda" falls back, logged."""
    model = load(path, providers=provider, allow_fallback=provider == "cuda", warmup=0)
    print(f"{path.name}: asked {provider}, running on {model.providers[0]}")
    return model


def p50(fn, runs: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def variants(model: Model, x: np.ndarray) -> dict:
    """The three ways of running the model on x, as callables; bind and resident use the runtime's Binding."""
    name_in = model.inputs[0].name
    bound, resident = model.bind(len(x)), model.bind(len(x))
    resident.run(x)
    return {"numpy": lambda: model.session.run(None, {name_in: x}), "bind": lambda: bound.run(x).outputs(),
            "resident": resident.run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SMALL)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print("available providers:", ort.get_available_providers())
    cuda = load_on(args.model, "cuda")
    cpu = load_on(args.model, "cpu")
    shape = cuda.input_shapes(1)[0]
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        x = rng.random((batch, *shape[1:]), dtype=np.float32)
        fns = variants(cuda, x)
        got = fns["bind"]()[0]
        want = cpu.run(x)[0]
        np.testing.assert_allclose(fns["numpy"]()[0], got, rtol=0, atol=1e-5)  # the paths agree exactly enough
        times = {k: p50(f, args.runs) for k, f in fns.items()}
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in times.items())
              + f"; numpy / bind {times['numpy'] / times['bind']:.2f}x; max |cuda - cpu| "
              f"{float(np.abs(got - want).max()):.2e}")


if __name__ == "__main__":
    main()
