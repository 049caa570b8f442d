"""`edgepipe bench MODEL`: latency percentiles and throughput, beside another model or PyTorch, in one run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgepipe.apps.sources import read_image
from edgepipe.postprocess.errors import UserError

BARE, FULL = "bare session.run", "model(images)"
BOUND, RESIDENT = "io binding, copied in and out", "io binding, resident on device"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency (p50/p90/p99) and throughput of an ONNX model")
    p.add_argument("model", type=Path, help="an .onnx file")
    p.add_argument("--batch", type=int, nargs="+", default=[1], help="batch sizes (default: 1)")
    p.add_argument("--runs", type=int, default=100, help="timed runs per batch size (default: 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default: 10)")
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu (default: auto)")
    p.add_argument("--allow-fallback", action="store_true", help="run on CPU when CUDA cannot (with a warning)")
    p.add_argument("--threads", type=int, default=0, help="CPU intra-op threads (default: onnxruntime's)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size for dynamic-size models")
    p.add_argument("--compare", type=Path, help="another .onnx (e.g. the int8 variant), measured interleaved")
    p.add_argument("--torch", metavar="CHECKPOINT_OR_ZOO_NAME",
                   help="also time the same model in PyTorch eager on the CPU (needs the train extra)")
    p.add_argument("--preprocess", type=Path, metavar="IMAGE",
                   help="also time the full path, model(images) = preprocess + run, against bare session.run")
    p.add_argument("--io-binding", action="store_true",
                   help="also time IO binding: inputs copied into bound device buffers and outputs copied out "
                        "(bound), and inputs and outputs left on the device (resident)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def torch_runner(source: str, inputs: list[np.ndarray]) -> Callable[[], object]:
    """A call of the PyTorch eager model on inputs (the ONNX model's, as float32), for timing beside it.

    source: a checkpoint written by `edgepipe train` (.pt) or a zoo name (`edgepipe models`, fresh weights:
    latency does not depend on them). torch and `export` are imported here only: edge installs have neither.
    """
    try:
        import torch

        from edgepipe.export.models import build
    except ImportError as exc:
        raise UserError(f"--torch needs PyTorch and edgepipe's export package (pip install 'edgepipe[train]'): "
                        f"{exc}") from None
    if Path(source).suffix in (".pt", ".pth"):
        from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint

        module = model_from_checkpoint(load_checkpoint(source))
    else:
        module = build(source).eval()
    tensors = [torch.from_numpy(x.astype(np.float32)) for x in inputs]
    try:
        with torch.inference_mode():
            module(*tensors)
    except (RuntimeError, TypeError) as exc:
        shapes = [tuple(x.shape) for x in inputs]
        raise UserError(f"--torch {source} does not take the ONNX model's inputs {shapes}: "
                        f"{str(exc).splitlines()[0]}") from None

    def call() -> object:
        with torch.inference_mode():
            return module(*tensors)

    return call


def batch_functions(args: argparse.Namespace, model, other, batch: int, rng: np.random.Generator
                    ) -> dict[str, Callable[[], object]]:
    """What one batch size times, by row name: the model, then --compare, --torch and the --preprocess pair."""
    shapes = model.input_shapes(batch, tuple(args.imgsz) if args.imgsz else None)
    if shapes[0][0] != batch:
        raise UserError(f"{args.model.name} has a fixed batch of {shapes[0][0]} "
                        f"({model.inputs[0].describe()}): --batch must be {shapes[0][0]}")
    xs = [rng.uniform(0, 1, s).astype(spec.dtype) for s, spec in zip(shapes, model.inputs, strict=True)]
    fns: dict[str, Callable[[], object]] = {args.model.name: lambda: model.run(*xs)}
    if other is not None:
        fns[f"compare:{args.compare.name}"] = lambda: other.run(*xs)
    if args.torch:
        fns[f"torch:{args.torch}"] = torch_runner(args.torch, xs)
    if args.io_binding:
        binding = model.bind(batch, tuple(args.imgsz) if args.imgsz else None)
        fns[BOUND] = lambda: binding.run(*xs).outputs()
        fns[RESIDENT] = binding.run
    if args.preprocess:
        from edgepipe.runtime import preprocess

        frames = [read_image(args.preprocess)] * batch
        ready = {model.inputs[0].name: preprocess(frames, model.spec).batch}
        fns[BARE] = lambda: model.session.run(None, ready)
        fns[FULL] = lambda: model(frames)
    return fns


def print_table(batch: int, results: dict, provider: str, runs: int, warmup: int) -> None:
    print(f"batch {batch}: {runs} runs after {warmup} warm-up on {provider}")
    first = next(iter(results.values())).p50
    print(f"  {'model':<36}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'img/s':>9}{'p50 / first':>13}")
    for r in results.values():
        print(f"  {r.name:<36}{r.p50:>9.3f}{r.p90:>9.3f}{r.p99:>9.3f}{r.throughput:>9.1f}{r.p50 / first:>13.2f}")
    if BARE in results:
        print(f"  runtime overhead, {FULL} (preprocess + checks) over {BARE}: "
              f"{results[FULL].p50 / results[BARE].p50 - 1:+.1%}")


def run(args: argparse.Namespace) -> int:
    from edgepipe.runtime import load
    from edgepipe.runtime.bench import measure

    kw = dict(providers=args.provider, allow_fallback=args.allow_fallback, intra_op_threads=args.threads, warmup=0)
    model = load(args.model, **kw)
    other = load(args.compare, **kw) if args.compare else None
    if args.preprocess and len(model.inputs) != 1:
        raise UserError(f"--preprocess times one image input, but {args.model.name} has {len(model.inputs)} inputs")
    rng = np.random.default_rng(0)
    rows, overhead = [], []
    for batch in args.batch:
        if batch < 1:
            raise UserError(f"--batch sizes must be >= 1, but got {batch}")
        fns = batch_functions(args, model, other, batch, rng)
        results = measure(fns, batch, args.runs, args.warmup, progress=not args.json)
        first = next(iter(results.values())).p50
        rows += [{**r.as_dict(), "p50_ratio_to_first": round(r.p50 / first, 4)} for r in results.values()]
        if BARE in results:
            overhead.append({"batch": batch, "full_over_bare": round(results[FULL].p50 / results[BARE].p50 - 1, 4)})
        if not args.json:
            print_table(batch, results, model.providers[0], args.runs, args.warmup)
    if args.json:
        report = {"provider": model.providers[0], "results": rows}
        print(json.dumps({**report, "overhead": overhead} if overhead else report, indent=2))
    return 0
