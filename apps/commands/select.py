"""`edgepipe select`: the most accurate model that meets a latency bound on this device.

The course's satisficing and optimizing metrics: running time must satisfy the bound (p50 latency at batch 1,
measured here, interleaved); among the models that do, accuracy is optimized.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from edgepipe.apps.bench import ACCURACY_KEYS, Selection, SelectOptions, select_model
from edgepipe.apps.commands.common import finite
from edgepipe.postprocess.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="pick the most accurate model meeting a latency bound on this device",
                       epilog="exit codes: 0 a model was chosen (its path on the last line), 1 no model meets the "
                       "bound, 2 bad input (a missing file, a bad option, no accuracy measured on any model)")
    p.add_argument("models", type=Path, nargs="+", help=".onnx files (variants of one model: fp32, fp16, int8, sizes)")
    p.add_argument("--latency-ms", type=finite, required=True, help="satisficing bound on p50 latency, batch 1")
    p.add_argument("--runs", type=int, default=SelectOptions.runs,
                   help="timed runs per model (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=SelectOptions.warmup,
                   help="untimed runs first (default: %(default)s)")
    p.add_argument("--provider", default=SelectOptions.provider,
                   help="auto, cuda or cpu (default: %(default)s)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size for dynamic-size models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def print_table(selection: Selection) -> None:
    key = selection.metric
    print(f"satisficing: p50 latency <= {selection.latency_ms} ms (batch 1, {selection.provider}); optimizing: "
          f"{key or 'no metric'} measured on each file (its metadata's evaluation)")
    print(f"  {'model':<40}{'p50 ms':>9}{key or 'metric':>10}  meets bound")
    for c in selection.candidates:
        acc = "-" if c.accuracy is None else f"{c.accuracy:.4f}"
        data = f"  ({c.data})" if c.data else ""
        print(f"  {c.model:<40}{c.p50_ms:>9.3f}{acc:>10}  {'yes' if c.meets_latency else 'no':<11}{data}")


def run(args: argparse.Namespace) -> int:
    selection = select_model(SelectOptions(tuple(args.models), args.latency_ms, args.runs, args.warmup,
                                           args.provider, tuple(args.imgsz) if args.imgsz else None))
    if args.json:
        print(json.dumps({"latency_ms": selection.latency_ms, "metric": selection.metric,
                          "provider": selection.provider, "candidates": [asdict(c) for c in selection.candidates],
                          "chosen": selection.chosen or None}, indent=2))
    else:
        print_table(selection)
    if not selection.metric:
        raise UserError(f"no model carries a metric {ACCURACY_KEYS} measured on it (written by `edgepipe export`): "
                        "select among files that `edgepipe export` wrote")
    if not selection.chosen:
        print(f"edgepipe select: no model meets p50 <= {args.latency_ms} ms and carries a measured {selection.metric}: "
              "relax the bound, or export a smaller or quantized variant", file=sys.stderr)
        return 1
    if not args.json:
        chosen = next(c for c in selection.candidates if c.model == selection.chosen)
        print(f"chosen: {chosen.model} ({selection.metric} {chosen.accuracy:.4f}, p50 {chosen.p50_ms} ms)")
    return 0
