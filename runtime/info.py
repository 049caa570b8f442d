"""describe(MODEL): what an ONNX file holds (inputs, outputs, opset, metadata) and which provider runs it here."""

from __future__ import annotations

import contextlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edgepipe.runtime.session import load


@dataclass(frozen=True)
class ModelInfo:
    """file, size_mb, ir_version, opsets (domain -> version), producer, inputs and outputs (described), the
    providers this onnxruntime was built with, those that can run here (each tried on a tiny model), the one chosen,
    and the model's metadata (a dict, or why there is none)."""

    file: str
    size_mb: float
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[str]
    outputs: list[str]
    providers_built_in: list[str]
    providers_usable: list[str]
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
        ort.get_available_providers(), usable_providers(), model.providers[0], meta,
    )


def usable_providers() -> list[str]:
    """The execution providers that really run here: each one onnxruntime was built with, tried on a one-node model
    (a provider that cannot start, such as CUDA without a GPU, falls back to the CPU and is left out)."""
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()
    usable = []
    for provider in ort.get_available_providers():
        try:  # onnxruntime prints a provider's failure and its fallback to the CPU: not ours to show
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                session = ort.InferenceSession(probe, providers=[provider])
        except Exception:  # onnxruntime raises its own types for a provider that cannot start
            continue
        if session.get_providers()[0] == provider:
            usable.append(provider)
    return usable
