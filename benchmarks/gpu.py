"""GPU check for the GPU machine, one call: CUDA really runs, its outputs match the CPU's, IO binding against numpy.

Run there (see ../shared/GPU.md for putting onnxruntime-gpu on PYTHONPATH) from the project root:
    python3 -m benchmarks.gpu [--model tests/assets/yolo-small.onnx] [--runs 200]
It runs on CPU-only machines too (then every "cuda" row is the CPU provider), which is how it is tested here.
For batch 1 and 32 it prints p50 ms of:
  numpy      session.run with numpy in and out (the host copies every call);
  bind       IO binding: the input OrtValue on the device updated in place from numpy each call, the output
             bound to the device and copied back each call;
  resident   the input already on the device and the output left there (the ceiling of a device pipeline).
and the largest |CUDA - CPU| output difference.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

SMALL = Path(__file__).resolve().parents[1] / "tests" / "assets" / "yolo-small.onnx"


def session(path: Path, provider: str) -> ort.InferenceSession:
    if provider == "CUDAExecutionProvider" and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    providers = [provider] if provider == "CPUExecutionProvider" else [provider, "CPUExecutionProvider"]
    s = ort.InferenceSession(str(path), providers=providers)
    print(f"{path.name}: asked {provider}, running on {s.get_providers()[0]}")
    return s


def p50(fn, runs: int) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def variants(s: ort.InferenceSession, x: np.ndarray) -> dict:
    """The three ways of running s on x, as callables."""
    device = "cuda" if s.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
    name_in, name_out = s.get_inputs()[0].name, s.get_outputs()[0].name
    x_dev = ort.OrtValue.ortvalue_from_numpy(x, device, 0)
    bind = s.io_binding()
    bind.bind_ortvalue_input(name_in, x_dev)
    bind.bind_output(name_out, device)
    resident = s.io_binding()
    resident.bind_ortvalue_input(name_in, ort.OrtValue.ortvalue_from_numpy(x, device, 0))
    resident.bind_output(name_out, device)

    def bound() -> list[np.ndarray]:
        x_dev.update_inplace(x)
        s.run_with_iobinding(bind)
        return bind.copy_outputs_to_cpu()

    return {"numpy": lambda: s.run(None, {name_in: x}), "bind": bound,
            "resident": lambda: s.run_with_iobinding(resident)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=SMALL)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    print("available providers:", ort.get_available_providers())
    cuda = session(args.model, "CUDAExecutionProvider")
    cpu = session(args.model, "CPUExecutionProvider")
    shape = [d if isinstance(d, int) else 1 for d in cuda.get_inputs()[0].shape]
    rng = np.random.default_rng(0)
    for batch in (1, 32):
        x = rng.random((batch, *shape[1:]), dtype=np.float32)
        fns = variants(cuda, x)
        got = fns["bind"]()[0]
        want = cpu.run(None, {cpu.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(fns["numpy"]()[0], got, rtol=0, atol=1e-5)  # the paths agree exactly enough
        times = {k: p50(f, args.runs) for k, f in fns.items()}
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in times.items())
              + f"; numpy / bind {times['numpy'] / times['bind']:.2f}x; max |cuda - cpu| "
              f"{float(np.abs(got - want).max()):.2e}")


if __name__ == "__main__":
    main()
