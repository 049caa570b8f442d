"""`edgepipe info MODEL`: inputs, outputs, opset, metadata, file size, and the providers available and chosen."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from edgepipe.runtime.info import describe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe an ONNX model: inputs, outputs, opset, metadata, providers")
    p.add_argument("model", type=Path, help="an .onnx file")
    p.add_argument("--provider", default="auto", help="auto, cuda or cpu (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    info = asdict(describe(args.model, args.provider))
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
