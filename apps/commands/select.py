"""`edgepipe select`: the most accurate model that meets a latency bound on this device.

The course's satisficing and optimizing metrics: running time must satisfy the bound (p50 latency at batch 1,
measured here, interleaved); among the models that do, accuracy is optimized.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgepipe.postprocess.errors import UserError

# Which metadata metric is "accuracy": the first of these that any candidate carries wins, and every candidate is
# judged by that one key (a detector's mAP@0.5 before a classifier's accuracy before a verifier's ROC AUC), so
# different metrics are never compared with each other.
ACCURACY_KEYS = ("map50", "accuracy", "auc")


@dataclass(frozen=True)
class Candidate:
    """One model in the decision table: p50 latency (ms, batch 1) and its accuracy under the chosen metric key.

    accuracy is None when the model's metadata does not carry that key: such a model cannot be chosen.
    """

    model: str
    p50_ms: float
    accuracy: float | None
    meets_latency: bool


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("select", help="pick the most accurate model meeting a latency bound on this device")
    p.add_argument("models", type=Path, nargs="+", help=".onnx files (variants of one model: fp32, fp16, int8, sizes)")
    p.add_argument("--latency-ms", type=float, required=True, help="satisficing bound on p50 latency, batch 1")
    p.add_argument("--runs", type=int, default=50, help="timed runs per model (default: 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs first (default: 5)")
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu (default: auto)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("H", "W"), help="input size for dynamic-size models")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def metric_key(metrics: list[dict[str, float]]) -> str:
    """The accuracy key every candidate is judged by: the first of ACCURACY_KEYS that any of them carries, or ""."""
    return next((key for key in ACCURACY_KEYS if any(key in m for m in metrics)), "")


def choose(candidates: list[Candidate]) -> Candidate | None:
    """The most accurate candidate meeting the latency bound; equal accuracy goes to the faster, then the first.

    Returns None when no candidate with an accuracy meets the bound (the command turns that into an error).
    """
    eligible = [c for c in candidates if c.meets_latency and c.accuracy is not None]
    return max(eligible, key=lambda c: (c.accuracy, -c.p50_ms), default=None)


def print_table(candidates: list[Candidate], key: str, bound: float, provider: str) -> None:
    print(f"satisficing: p50 latency <= {bound} ms (batch 1, {provider}); optimizing: {key or 'no metric'} "
          "from the models' metadata")
    print(f"  {'model':<40}{'p50 ms':>9}{key or 'metric':>10}  meets bound")
    for c in candidates:
        acc = "-" if c.accuracy is None else f"{c.accuracy:.4f}"
        print(f"  {c.model:<40}{c.p50_ms:>9.3f}{acc:>10}  {'yes' if c.meets_latency else 'no'}")


def run(args: argparse.Namespace) -> int:
    from edgepipe.runtime import load
    from edgepipe.runtime.bench import measure

    if args.latency_ms <= 0:
        raise UserError(f"--latency-ms must be > 0, but got {args.latency_ms}")
    models = {str(path): load(path, providers=args.provider, warmup=0) for path in args.models}
    rng = np.random.default_rng(0)
    fns = {}
    for name, model in models.items():
        shapes = model.input_shapes(1, tuple(args.imgsz) if args.imgsz else None)
        xs = [rng.uniform(0, 1, s).astype(spec.dtype) for s, spec in zip(shapes, model.inputs, strict=True)]
        fns[name] = lambda m=model, xs=xs: m.run(*xs)
    latency = measure(fns, 1, args.runs, args.warmup)
    metrics = {name: m.meta.metrics if m.has_meta else {} for name, m in models.items()}
    key = metric_key(list(metrics.values()))
    candidates = [
        Candidate(name, round(latency[name].p50, 4), metrics[name].get(key), latency[name].p50 <= args.latency_ms)
        for name in models
    ]
    chosen = choose(candidates)
    provider = next(iter(models.values())).providers[0]
    if args.json:
        print(json.dumps({"latency_ms": args.latency_ms, "metric": key, "provider": provider,
                          "candidates": [asdict(c) for c in candidates], "chosen": chosen and chosen.model}, indent=2))
    else:
        print_table(candidates, key, args.latency_ms, provider)
    if chosen is None:
        raise UserError(f"no model meets p50 <= {args.latency_ms} ms with a metric {ACCURACY_KEYS} in its metadata: "
                        "relax the bound, or export a smaller or quantized variant")
    if not args.json:
        print(f"chosen: {chosen.model} ({key} {chosen.accuracy:.4f}, p50 {chosen.p50_ms} ms)")
    return 0
