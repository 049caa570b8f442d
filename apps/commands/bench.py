"""`edgepipe bench MODEL`: latency percentiles and throughput, beside another model or PyTorch, in one run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from apps.cli import UserError


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
    p.add_argument("--overhead", action="store_true",
                   help="also time the full path (preprocess a 640x480 frame + wrapper) against bare session.run")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def input_shape(model, batch: int, imgsz: list[int] | None) -> tuple[int, ...]:
    """A concrete input shape: fixed dims as declared, the batch, and the size from metadata or --imgsz."""
    shape = list(model.inputs[0].shape)
    shape[0] = batch
    if len(shape) == 4:
        size = imgsz or (list(model.meta.preprocess.input_size) if model.has_meta else None)
        for axis in (2, 3):
            if not isinstance(shape[axis], int):
                if size is None:
                    raise UserError(f"input {model.inputs[0].describe()} has a dynamic size: give --imgsz H W")
                shape[axis] = size[axis - 2]
        if not isinstance(shape[1], int):
            shape[1] = model.meta.preprocess.channels if model.has_meta else 3
    if any(not isinstance(d, int) for d in shape):
        raise UserError(f"input {model.inputs[0].describe()} has dynamic dims this command cannot guess")
    return tuple(shape)


def torch_runner(name: str, x: np.ndarray):
    """A callable running the PyTorch eager model on x, built by the export package (imported only here)."""
    try:
        from export.bench import torch_runner as build
    except ImportError as exc:
        raise UserError(f"--torch needs PyTorch and the export package (pip install 'edgepipe[train]'): {exc}") \
            from None
    return build(name, x)


def run(args: argparse.Namespace) -> int:
    from runtime import load, preprocess
    from runtime.bench import measure

    kw = dict(providers=args.provider, allow_fallback=args.allow_fallback, intra_op_threads=args.threads, warmup=0)
    model = load(args.model, **kw)
    other = load(args.compare, **kw) if args.compare else None
    rng = np.random.default_rng(0)
    rows = []
    for batch in args.batch:
        if batch < 1:
            raise UserError(f"--batch sizes must be >= 1, but got {batch}")
        x = rng.uniform(0, 1, input_shape(model, batch, args.imgsz)).astype(model.inputs[0].dtype)
        fns = {args.model.name: lambda x=x: model.run(x)}
        if other is not None:
            fns[f"compare:{args.compare.name}"] = lambda x=x: other.run(x)
        if args.torch:
            fns[f"torch:{args.torch}"] = torch_runner(args.torch, x.astype(np.float32))
        if args.overhead:
            frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(batch)]
            ready = preprocess(frames, model.spec).batch
            fns["bare session.run"] = lambda r=ready: model.session.run(None, {model.inputs[0].name: r})
            fns["preprocess + model"] = lambda f=frames: model(f)
        if not args.json:
            print(f"batch {batch}: {args.runs} runs after {args.warmup} warm-up on {model.providers[0]}")
        results = measure(fns, batch, args.runs, args.warmup, progress=not args.json)
        rows += [r.as_dict() for r in results.values()]
        if not args.json:
            base = results[args.model.name].p50
            print(f"  {'model':<36}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'img/s':>9}{'p50 / first':>13}")
            for r in results.values():
                print(f"  {r.name:<36}{r.p50:>9.3f}{r.p90:>9.3f}{r.p99:>9.3f}{r.throughput:>9.1f}{r.p50 / base:>13.2f}")
            if args.overhead:
                full, bare = results["preprocess + model"].p50, results["bare session.run"].p50
                print(f"  runtime overhead (preprocess + wrapper) over bare session.run: {full / bare - 1:+.1%}")
    if args.json:
        print(json.dumps({"provider": model.providers[0], "results": rows}, indent=2))
    return 0
