"""Command-line options the apps share to load a model: provider, threads, input size, metadata overrides."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.metadata import FLAT_KEYS


def add_model_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """--provider, --allow-fallback, --threads, --imgsz and --meta KEY=VALUE (with an optional option prefix)."""
    dash = f"--{prefix}-" if prefix else "--"
    dest = f"{prefix}_" if prefix else ""
    p.add_argument(f"{dash}provider", dest=f"{dest}provider", default="auto",
                   help="auto (CUDA when present, else CPU), cuda or cpu (default: auto)")
    p.add_argument(f"{dash}allow-fallback", dest=f"{dest}allow_fallback", action="store_true",
                   help="run on the CPU when CUDA cannot (logged as a warning)")
    p.add_argument(f"{dash}threads", dest=f"{dest}threads", type=int, default=0,
                   help="CPU intra-op threads (default: onnxruntime's)")
    p.add_argument(f"{dash}imgsz", dest=f"{dest}imgsz", type=int, nargs=2, metavar=("H", "W"),
                   help="input size for models with a dynamic input size")
    p.add_argument(f"{dash}meta", dest=f"{dest}meta", action="append", default=[], metavar="KEY=VALUE",
                   help=f"describe or correct the model's metadata; keys: {', '.join(FLAT_KEYS)}; values in JSON "
                   "where not plain text (e.g. names='[\"cat\",\"dog\"]')")


def parse_meta(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> flat metadata overrides; a JSON value is parsed, anything else kept as text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in FLAT_KEYS:
            raise UserError(f"--meta takes KEY=VALUE with KEY one of {', '.join(FLAT_KEYS)}, but got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def load_model(path: Path, args: argparse.Namespace, prefix: str = "", warmup: int = 1) -> Any:
    """runtime.load with the options add_model_args added (torch never imported)."""
    from edgepipe.runtime import load

    dest = f"{prefix}_" if prefix else ""
    overrides = parse_meta(getattr(args, f"{dest}meta"))
    imgsz = getattr(args, f"{dest}imgsz")
    if imgsz:
        overrides["imgsz"] = list(imgsz)
    threads = getattr(args, f"{dest}threads")
    if threads < 0:
        raise UserError(f"--threads must be >= 0 (0: onnxruntime's default), but got {threads}")
    return load(path, providers=getattr(args, f"{dest}provider"), allow_fallback=getattr(args, f"{dest}allow_fallback"),
                intra_op_threads=threads, overrides=overrides or None, warmup=warmup)
