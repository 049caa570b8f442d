"""`edgepipe bench MODEL`: latency percentiles and throughput, beside another model or PyTorch, in one run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgepipe.apps.bench import BARE, FULL, BatchTimes, BenchOptions, bench
from edgepipe.apps.commands.common import finite
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.pipeline_bench import PipelineOptions, bench_pipeline
from edgepipe.postprocess.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure latency (p50/p90/p99) and throughput of an ONNX model")
    p.add_argument("model", type=Path, help="an .onnx file")
    p.add_argument("--batch", type=int, nargs="+", default=list(BenchOptions.batch),
                   help="batch sizes (default: 1)")
    p.add_argument("--runs", type=int, default=BenchOptions.runs,
                   help="timed runs per batch size (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=BenchOptions.warmup,
                   help="untimed runs first (default: %(default)s)")
    p.add_argument("--provider", default=BenchOptions.provider,
                   help="auto, cuda or cpu (default: %(default)s)")
    p.add_argument("--allow-fallback", action="store_true", help="run on CPU when CUDA cannot (with a warning)")
    p.add_argument("--threads", type=int, default=BenchOptions.threads,
                   help="CPU intra-op threads (default: onnxruntime's)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size for dynamic-size models")
    p.add_argument("--compare", type=Path, help="another .onnx (e.g. the int8 variant), measured interleaved")
    p.add_argument("--torch", metavar="CHECKPOINT_OR_ZOO_NAME", default=BenchOptions.torch,
                   help="also time the same model in PyTorch eager on the CPU (needs the train extra)")
    p.add_argument("--preprocess", type=Path, metavar="IMAGE",
                   help="also time the full path, model(images) = preprocess + run, against bare session.run")
    p.add_argument("--io-binding", action="store_true",
                   help="also time IO binding: inputs copied into bound device buffers and outputs copied out "
                        "(bound), and inputs and outputs left on the device (resident)")
    p.add_argument("--pipeline", metavar="SOURCE",
                   help="a detector: time `edgepipe detect` on SOURCE (a video, an image folder or a glob) against "
                        "bare session.run on the same frames, and each step of a frame alone (read, preprocess, "
                        "model, postprocess)")
    p.add_argument("--frames", type=int, default=PipelineOptions.frames,
                   help="with --pipeline: frames of SOURCE used (0: all; default %(default)s)")
    p.add_argument("--rounds", type=int, default=PipelineOptions.rounds,
                   help="with --pipeline: interleaved rounds of bare and pipeline (default %(default)s)")
    p.add_argument("--conf", type=finite, default=PipelineOptions.conf,
                   help="with --pipeline: score threshold, as detect's (default %(default)s)")
    p.add_argument("--iou", type=finite, default=PipelineOptions.iou,
                   help="with --pipeline: NMS IoU threshold, as detect's (default %(default)s)")
    p.add_argument("--no-rect", dest="rect", action="store_false",
                   help="with --pipeline: run a fixed-size YOLOv8 export at its own size, as detect --no-rect")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def print_table(times: BatchTimes, provider: str, runs: int, warmup: int) -> None:
    print(f"batch {times.batch}: {runs} runs after {warmup} warm-up on {provider}")
    first = next(iter(times.results.values())).p50
    print(f"  {'model':<36}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'img/s':>9}{'p50 / first':>13}")
    for r in times.results.values():
        print(f"  {r.name:<36}{r.p50:>9.3f}{r.p90:>9.3f}{r.p99:>9.3f}{r.throughput:>9.1f}{r.p50 / first:>13.2f}")
    if times.overhead is not None:
        print(f"  runtime overhead, {FULL} (preprocess + checks) over {BARE}: {times.overhead:+.1%}")


def run(args: argparse.Namespace) -> int:
    if args.pipeline:
        return run_pipeline(args)
    defaults = PipelineOptions
    alone = [flag for flag, given in (("--frames", args.frames != defaults.frames), ("--rounds", args.rounds !=
             defaults.rounds), ("--conf", args.conf != defaults.conf), ("--iou", args.iou != defaults.iou),
             ("--no-rect", not args.rect)) if given]
    if alone:
        verb = "applies" if len(alone) == 1 else "apply"
        raise UserError(f"{', '.join(alone)} {verb} only with --pipeline SOURCE: add it, or drop them")
    options = BenchOptions(args.model, args.provider, args.allow_fallback, args.threads,
                           tuple(args.imgsz) if args.imgsz else None, tuple(args.batch), args.runs, args.warmup,
                           args.compare, args.torch or "", args.preprocess, args.io_binding)
    report = bench(options, progress=not args.json)
    if not args.json:
        for times in report.batches:
            print_table(times, report.provider, args.runs, args.warmup)
        return 0
    rows, overhead = [], []
    for times in report.batches:
        first = next(iter(times.results.values())).p50
        rows += [{**r.as_dict(), "p50_ratio_to_first": round(r.p50 / first, 4)} for r in times.results.values()]
        if times.overhead is not None:
            overhead.append({"batch": times.batch, "full_over_bare": round(times.overhead, 4)})
    result = {"provider": report.provider, "results": rows}
    print(json.dumps({**result, "overhead": overhead} if overhead else result, indent=2))
    return 0


def run_pipeline(args: argparse.Namespace) -> int:
    """bench --pipeline SOURCE: the detect pipeline against bare session.run."""
    others = [flag for flag, given in (("--compare", args.compare), ("--torch", args.torch), ("--preprocess",
              args.preprocess), ("--io-binding", args.io_binding), ("--batch", args.batch != [1]),
              ("--runs", args.runs != BenchOptions.runs), ("--warmup", args.warmup != BenchOptions.warmup)) if given]
    if others:
        raise UserError(f"--pipeline times the detect pipeline alone: drop {', '.join(others)} (or run them "
                        "without --pipeline; --frames and --rounds set its length)")
    model = ModelOptions(args.model, args.provider, args.allow_fallback, args.threads,
                         tuple(args.imgsz) if args.imgsz else None, rect=args.rect)
    options = PipelineOptions(model, args.pipeline, args.frames, args.rounds, args.conf, args.iou)
    report = bench_pipeline(options, progress=not args.json)
    print(json.dumps(report.as_dict(), indent=2) if args.json else "\n".join(report.lines()))
    return 0
