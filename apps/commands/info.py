"""`edgepipe info MODEL`: inputs, outputs, opset, metadata, file size, and the providers available and chosen."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import onnx
import onnxruntime as ort


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an ONNX model: inputs, outputs, opset, metadata, providers")
    p.add_argument("model", type=Path, help="an .onnx file")
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu (default: auto)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def describe(path: Path, provider: str) -> dict:
    """Everything `info` prints, as a dict."""
    from edgepipe.runtime import load

    model = load(path, providers=provider, warmup=0)
    proto = onnx.load(str(path), load_external_data=False)
    try:
        meta: dict | str = asdict(model.meta)
    except ValueError as exc:
        meta = f"none usable ({exc})"
    return {
        "file": str(path),
        "size_mb": round(path.stat().st_size / 2**20, 3),
        "ir_version": proto.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in proto.opset_import},
        "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
        "inputs": [i.describe() for i in model.inputs],
        "outputs": [o.describe() for o in model.outputs],
        "providers_available": ort.get_available_providers(),
        "provider_chosen": model.providers[0],
        "metadata": meta,
    }


def run(args: argparse.Namespace) -> int:
    info = describe(args.model, args.provider)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "metadata" and isinstance(value, dict):
            print(f"{key:<{width}}")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key:<{width}}  " + ("\n" + " " * (width + 2)).join(str(v) for v in value))
        else:
            print(f"{key:<{width}}  {value}")
    return 0
