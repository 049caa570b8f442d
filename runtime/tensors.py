"""Model inputs and outputs as TensorSpecs, and the check of a numpy batch against its spec before onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgepipe.postprocess.errors import UserError

# onnxruntime element types numpy can feed; others (bfloat16, float8, string) are described but not fed.
ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(uint16)": np.uint16, "tensor(int16)": np.int16,
    "tensor(uint32)": np.uint32, "tensor(int32)": np.int32, "tensor(uint64)": np.uint64, "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (ints for fixed dims, a name or None for dynamic ones), element type.

    dtype: the numpy dtype that feeds it (object for element types numpy cannot hold). onnx_type: as onnxruntime
    writes it, e.g. "tensor(float)".
    """

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype
    onnx_type: str

    def describe(self) -> str:
        """One line: "x: float32 (N, 3, 640, 640)"; "?" marks a dynamic dimension without a name."""
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        kind = self.onnx_type if self.dtype == object else self.dtype.name
        return f"{self.name}: {kind} ({dims})"


def tensor_spec(node: Any) -> TensorSpec:
    """A TensorSpec from onnxruntime's NodeArg (dims: int, a symbolic name, or None)."""
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(ORT_TYPES.get(node.type, object)), node.type)


def check_input(spec: TensorSpec, batch: np.ndarray, named: dict[str, tuple[int, str]]) -> np.ndarray:
    """One input checked against its spec; named records symbolic dims so inputs sharing one agree."""
    if not isinstance(batch, np.ndarray):
        raise UserError(f"input {spec.name!r} must be a numpy array, but got {type(batch).__name__}")
    if batch.ndim != len(spec.shape):
        raise UserError(f"input {spec.name!r} must have rank {len(spec.shape)} ({spec.describe()}), "
                         f"but got shape {batch.shape}")
    for axis, (want, got) in enumerate(zip(spec.shape, batch.shape, strict=True)):
        if isinstance(want, int) and want != got:
            raise UserError(f"input {spec.name!r} {_axis_name(axis, batch.ndim)} {axis} must be {want} "
                             f"({spec.describe()}), but got {got} in shape {batch.shape}{_batch_hint(axis, got, want)}")
        if isinstance(want, str):
            seen, where = named.setdefault(want, (got, spec.name))
            if seen != got:
                raise UserError(f"input {spec.name!r} dimension {axis} ({want}) must equal {seen} as in input "
                                 f"{where!r}, but got {got}")
    if spec.dtype == object:
        raise UserError(f"input {spec.name!r} has element type {spec.onnx_type}, which edgepipe cannot feed")
    if batch.dtype != spec.dtype:
        if spec.dtype == np.float16 and batch.dtype == np.float32:
            return batch.astype(np.float16)
        raise UserError(f"input {spec.name!r} must be {spec.dtype.name}, but got {batch.dtype}")
    return np.ascontiguousarray(batch)


def _axis_name(axis: int, ndim: int) -> str:
    if axis == 0:
        return "batch dimension"
    return "channel dimension" if axis == 1 and ndim == 4 else "size dimension"


def _batch_hint(axis: int, got: int, want: int) -> str:
    if axis == 0 and got > want:
        return ": export with a dynamic batch axis, or feed fewer images at a time"
    return ""
