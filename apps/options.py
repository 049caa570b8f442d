"""ModelOptions: how the apps load one ONNX model (provider, threads, input size, metadata overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime import Model, load
from edgepipe.runtime.files import Input
from edgepipe.runtime.metadata import sidecars


@dataclass(frozen=True)
class ModelOptions:
    """An ONNX model and how to run it.

    provider: "auto" (CUDA when present, else CPU), "cuda" or "cpu". allow_fallback: run on the CPU when CUDA
    cannot (logged as a warning). threads: CPU intra-op threads (0: onnxruntime's default). imgsz: (H, W) for a
    model with a dynamic input size (None: its metadata's). meta: flat metadata keys (runtime.metadata.FLAT_KEYS)
    over the file's own. rect: a fixed-size YOLOv8 detector runs at the frames' aspect, padded only to its stride
    (apps.detect.pipeline.Detector); False: at its own size.
    """

    path: Path
    provider: str = "auto"
    allow_fallback: bool = False
    threads: int = 0
    imgsz: tuple[int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    rect: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.threads < 0:
            raise UserError(f"--threads must be >= 0 (0: onnxruntime's default), but got {self.threads}")

    def inputs(self, what: str) -> list[Input]:
        """The files this model is read from (the .onnx and its sidecar, if any), for the output checks."""
        return [Input(what, self.path), *(Input(f"{what} sidecar", side) for side in sidecars(self.path))]

    def load(self, warmup: int = 1, spin: bool = True) -> Model:
        """runtime.load with these options; spin False: idle worker threads sleep (for models timed interleaved)."""
        overrides = dict(self.meta)
        if self.imgsz:
            overrides["imgsz"] = list(self.imgsz)
        return load(self.path, providers=self.provider, allow_fallback=self.allow_fallback,
                    intra_op_threads=self.threads, overrides=overrides or None, warmup=warmup, spin=spin)
