"""Benchmark of the runtime's overhead on a small conv net: bare session.run vs Model.run vs model(images).

Run from the project root: python -m benchmarks.runtime [--quick] [--provider cpu|cuda] [--threads N].
Every row is measured interleaved with the bare session.run it is compared to; prints medians (ms) and ratios.
It also times the IO-binding alternative that Model.run was measured against ("io binding" column).
"""

from __future__ import annotations

import argparse

import numpy as np

from edgepipe.runtime import load, preprocess
from edgepipe.runtime.bench import measure
from edgepipe.runtime.metadata import ModelMeta, to_metadata_props
from edgepipe.runtime.preprocessing import PreprocessSpec
from tests.onnx_graphs import conv_net_model

FRAME = (480, 640)  # a VGA camera frame, letterboxed to the model's input


def io_binding(model, ready: np.ndarray):
    """session.run through one IO binding, numpy in and out: on CUDA the output is bound to the device once and
    copied back per call; on the CPU it is a buffer allocated once and copied out per call."""
    binding = model.session.io_binding()
    if model.on_cuda:
        binding.bind_output("y", "cuda")

        def call() -> list[np.ndarray]:
            binding.bind_cpu_input("x", ready)
            model.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()

        return call
    out_shape = model.session.run(None, {"x": ready})[0].shape
    buffer = np.empty(out_shape, np.float32)
    binding.bind_output("y", "cpu", 0, np.float32, list(out_shape), buffer.ctypes.data)

    def call_cpu() -> list[np.ndarray]:
        binding.bind_cpu_input("x", ready)
        model.session.run_with_iobinding(binding)
        return [buffer.copy()]

    return call_cpu


def bench(size: int, batch: int, provider: str, threads: int, runs: int) -> None:
    meta = ModelMeta(task="classify", preprocess=PreprocessSpec((size, size)), class_names=("object",))
    data = conv_net_model((size, size), props=to_metadata_props(meta)).SerializeToString()
    model = load(data, providers=provider, intra_op_threads=threads, warmup=0)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (*FRAME, 3), dtype=np.uint8) for _ in range(batch)]
    ready = preprocess(frames, model.spec).batch  # (B, 3, size, size) float32
    fns = {
        "bare session.run": lambda: model.session.run(None, {"x": ready}),
        "Model.run": lambda: model.run(ready),
        "preprocess": lambda: preprocess(frames, model.spec),
        "model(images)": lambda: model(frames),
        "io binding": io_binding(model, ready),
    }
    p50 = {name: lat.p50 for name, lat in measure(fns, batch, runs, warmup=10).items()}
    bare = p50["bare session.run"]
    print(f"{size:>5}{batch:>6}  {model.providers[0]:<22}{bare:>9.3f}{p50['Model.run'] / bare:>11.3f}"
          f"{p50['preprocess']:>12.3f}{p50['model(images)']:>15.3f}{p50['model(images)'] / bare:>11.3f}"
          f"{p50['io binding'] / bare:>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--provider", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (default: onnxruntime's)")
    args = parser.parse_args()
    print(f"## runtime overhead, conv net, {FRAME[1]}x{FRAME[0]} frames: median ms, and ratios to bare session.run")
    print(f"{'size':>5}{'batch':>6}  {'provider':<22}{'bare ms':>9}{'Model.run':>11}{'preproc ms':>12}"
          f"{'model(img) ms':>15}{'model(img)':>11}{'io binding':>12}")
    for size, batch in ((160, 1), (320, 1), (320, 4), (640, 1)):
        runs = 30 if args.quick else (100 if size * batch >= 1280 else 300)
        bench(size, batch, args.provider, args.threads, runs)


if __name__ == "__main__":
    main()
