"""`edgepipe select`: the most accurate model that meets a latency bound on this device.

The course's satisficing and optimizing metrics: running time must satisfy the bound; among the models that
do, accuracy is optimized.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from apps.cli import UserError
from apps.commands.bench import input_shape

# Which metadata metric is "accuracy", in order of preference: detection mAP@0.5, classification accuracy,
# verification ROC AUC.
ACCURACY_KEYS = ("map50", "accuracy", "auc")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="pick the most accurate model meeting a latency bound on this device")
    p.add_argument("models", type=Path, nargs="+", help=".onnx files (variants of one model: fp32, fp16, int8, sizes)")
    p.add_argument("--latency-ms", type=float, required=True, help="satisficing bound on p50 latency, batch 1")
    p.add_argument("--runs", type=int, default=50, help="timed runs per model (default: 50)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def accuracy(model) -> tuple[str, float] | None:
    """The model's accuracy metric from its metadata, or None."""
    if not model.has_meta:
        return None
    for key in ACCURACY_KEYS:
        if key in model.meta.metrics:
            return key, float(model.meta.metrics[key])
    return None


def run(args: argparse.Namespace) -> int:
    from runtime import load
    from runtime.bench import measure

    models = {path: load(path, providers=args.provider, warmup=0) for path in args.models}
    rng = np.random.default_rng(0)
    fns = {}
    for path, model in models.items():
        x = rng.uniform(0, 1, input_shape(model, 1, None)).astype(model.inputs[0].dtype)
        fns[str(path)] = lambda m=model, x=x: m.run(x)
    latency = measure(fns, 1, args.runs, args.warmup)
    rows = []
    for path, model in models.items():
        acc = accuracy(model)
        p50 = latency[str(path)].p50
        rows.append({"model": str(path), "p50_ms": round(p50, 3), "metric": acc[0] if acc else None,
                     "accuracy": acc[1] if acc else None, "meets_latency": p50 <= args.latency_ms})
    eligible = [r for r in rows if r["meets_latency"] and r["accuracy"] is not None]
    chosen = max(eligible, key=lambda r: (r["accuracy"], -r["p50_ms"])) if eligible else None
    if args.json:
        print(json.dumps({"latency_ms": args.latency_ms, "rows": rows, "chosen": chosen and chosen["model"]}, indent=2))
    else:
        print(f"satisficing: p50 latency <= {args.latency_ms} ms (batch 1, {models[args.models[0]].providers[0]}); "
              "optimizing: accuracy from the model's metadata")
        print(f"  {'model':<40}{'p50 ms':>9}{'metric':>10}{'accuracy':>10}  meets bound")
        for r in rows:
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
            print(f"  {r['model']:<40}{r['p50_ms']:>9.3f}{r['metric'] or '-':>10}{acc:>10}  "
                  f"{'yes' if r['meets_latency'] else 'no'}")
    if chosen is None:
        raise UserError(f"no model meets p50 <= {args.latency_ms} ms with an accuracy metric in its metadata "
                        f"(keys {ACCURACY_KEYS}): relax the bound or export a smaller/quantized variant")
    if not args.json:
        print(f"chosen: {chosen['model']} ({chosen['metric']} {chosen['accuracy']:.4f}, p50 {chosen['p50_ms']} ms)")
    return 0
