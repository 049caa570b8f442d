"""describe(MODEL): what an ONNX file holds (inputs, outputs, opset, metadata) and which provider runs it here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from edgepipe.runtime.session import load


@dataclass(frozen=True)
class ModelInfo:
    """file, size_mb, ir_version, opsets (domain -> version), producer, inputs and outputs (described), the
    providers onnxruntime offers and the one chosen, and the model's metadata (a dict, or why there is none)."""

    file: str
    size_mb: float
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[str]
    outputs: list[str]
    providers_available: list[str]
    provider_chosen: str
    metadata: dict[str, Any] | str


def describe(path: Path, provider: str = "auto") -> ModelInfo:
    """Load path on provider ("auto", "cuda" or "cpu") and describe it."""
    model = load(path, providers=provider, warmup=0)
    proto = onnx.load(str(path), load_external_data=False)
    try:
        meta: dict[str, Any] | str = asdict(model.meta)
    except ValueError as exc:
        meta = f"none usable ({exc})"
    return ModelInfo(
        str(path), round(path.stat().st_size / 2**20, 3), proto.ir_version,
        {(o.domain or "ai.onnx"): o.version for o in proto.opset_import},
        f"{proto.producer_name} {proto.producer_version}".strip(),
        [i.describe() for i in model.inputs], [o.describe() for o in model.outputs],
        ort.get_available_providers(), model.providers[0], meta,
    )
