"""onnxruntime sessions: providers chosen explicitly and reported, input checks, IO binding on CUDA."""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from postprocess.boxes import Transform
from runtime.metadata import ModelMeta, read_metadata
from runtime.preprocess import PreprocessSpec, preprocess

log = logging.getLogger("edgepipe.runtime")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
PROVIDER_ALIASES = {"cuda": CUDA, "cpu": CPU}
GRAPH_OPT = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
CUDNN_SEARCH = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(uint8)": np.uint8, "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(bool)": np.bool_}


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output: name, shape (ints for fixed dims, a name or None for dynamic ones), numpy dtype."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: type

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {np.dtype(self.dtype).name} ({dims})"


def cuda_device_present() -> bool:
    """Whether this machine shows an NVIDIA GPU device node (desktop/server GPUs or Jetson)."""
    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/nvhost-ctrl-gpu"))


def resolve_providers(providers: str | Sequence[str]) -> list[str]:
    """"auto", "cuda", "cpu" or a list of those / onnxruntime provider names -> onnxruntime names to request.

    "auto" is CUDA when onnxruntime-gpu and a GPU are present, else CPU. CPU always closes the list so a session
    can be created; whether CUDA really runs is checked after creation.
    """
    available = ort.get_available_providers()
    if providers == "auto":
        wanted = [CUDA] if CUDA in available and cuda_device_present() else []
    else:
        items = [providers] if isinstance(providers, str) else list(providers)
        wanted = []
        for p in items:
            name = PROVIDER_ALIASES.get(p.lower(), p) if isinstance(p, str) else p
            if name not in available and name != CPU:
                raise ValueError(
                    f"provider {p!r} is not available in this onnxruntime build (available: {available}); "
                    "for CUDA install onnxruntime-gpu"
                )
            wanted.append(name)
    return [p for p in wanted if p != CPU] + [CPU]


class Model:
    """One InferenceSession, the model's metadata, its input/output specs, and the runtime's one preprocess.

    Use runtime.load() to build it. model(images) preprocesses and runs; model.run(batch) runs a ready batch.
    """

    def __init__(self, session: ort.InferenceSession, meta: ModelMeta | None, meta_error: str, name: str) -> None:
        self.session = session
        self.name = name
        self._meta = meta
        self._meta_error = meta_error
        self.inputs = [_spec(i) for i in session.get_inputs()]
        self.outputs = [_spec(o) for o in session.get_outputs()]
        self.providers: list[str] = session.get_providers()
        self.on_cuda = self.providers[0] == CUDA
        self._binding = session.io_binding() if self.on_cuda else None

    @property
    def meta(self) -> ModelMeta:
        """The model's description; raises the reason when the file carries none (info and bench still work)."""
        if self._meta is None:
            raise ValueError(self._meta_error)
        return self._meta

    @property
    def has_meta(self) -> bool:
        return self._meta is not None

    @property
    def spec(self) -> PreprocessSpec:
        """The preprocessing spec, its dtype taken from the model's input (fp16 models get fp16 input)."""
        spec = self.meta.preprocess
        dtype = "float16" if self.inputs[0].dtype == np.float16 else "float32"
        return spec if spec.dtype == dtype else replace(spec, dtype=dtype)

    def check_input(self, batch: np.ndarray) -> np.ndarray:
        """Check a batch against the first input (rank, fixed dims, dtype) before onnxruntime sees it.

        batch: (B, C, H, W) or whatever the input declares. float32 is cast for fp16 models. Returns it.
        """
        spec = self.inputs[0]
        if not isinstance(batch, np.ndarray):
            raise ValueError(f"input {spec.name!r} must be a numpy array, but got {type(batch).__name__}")
        if batch.ndim != len(spec.shape):
            raise ValueError(f"input {spec.name!r} must have rank {len(spec.shape)} {spec.describe()}, "
                             f"but got shape {batch.shape}")
        for axis, (want, got) in enumerate(zip(spec.shape, batch.shape, strict=True)):
            if isinstance(want, int) and want != got:
                what = ("batch" if axis == 0 else "channel" if axis == 1 and batch.ndim == 4 else "size") + " dimension"
                hint = (": export with a dynamic batch axis, or feed fewer images at a time"
                        if axis == 0 and got > want else "")
                raise ValueError(f"input {spec.name!r} {what} {axis} must be {want} ({spec.describe()}), "
                                 f"but got {got} in shape {batch.shape}{hint}")
        if batch.dtype != spec.dtype:
            if spec.dtype == np.float16 and batch.dtype == np.float32:
                return batch.astype(np.float16)
            raise ValueError(f"input {spec.name!r} must be {np.dtype(spec.dtype).name}, but got {batch.dtype}")
        return np.ascontiguousarray(batch)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run the model on a ready batch for its first input. Returns every output as numpy arrays."""
        batch = self.check_input(batch)
        if self._binding is None:
            return self.session.run(None, {self.inputs[0].name: batch})
        # CUDA: copy the input to the device once, keep outputs on the device until they are read.
        binding = self._binding
        binding.bind_cpu_input(self.inputs[0].name, batch)
        for out in self.outputs:
            binding.bind_output(out.name, "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Transform]]:
        """Preprocess frames (uint8 BGR) with the model's spec and run them. Returns (outputs, transforms)."""
        pre = preprocess(images, self.spec)
        return self.run(pre.batch), pre.transforms

    def warmup(self, runs: int = 1) -> None:
        """Run zeros through the model so the first real frame does not pay for allocation and kernel choice."""
        shape = tuple(d if isinstance(d, int) else 1 for d in self.inputs[0].shape)
        if self.has_meta and len(shape) == 4:
            shape = (shape[0], shape[1], *self.meta.preprocess.input_size)
        zeros = np.zeros(shape, dtype=self.inputs[0].dtype)
        for _ in range(runs):
            self.run(zeros)


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else (d or None) for d in node.shape)
    return TensorSpec(node.name, shape, ORT_TYPES.get(node.type, np.float32))


def _read_model(path_or_bytes: str | Path | bytes) -> tuple[bytes, str]:
    """The model's bytes and a display name. Raises FileNotFoundError / ValueError with the path."""
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes, "<bytes>"
    path = Path(path_or_bytes)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path} (expected an .onnx file)")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"model file {path} is empty: re-export or re-download it")
    return data, str(path)


def _session_error(name: str, exc: Exception) -> ValueError:
    """onnxruntime's load error as one clear line."""
    text = str(exc)
    if "IR version" in text:
        detail = text.split(":")[-1].strip()
        return ValueError(f"{name}: the ONNX IR version is newer than this onnxruntime reads ({detail}): "
                          "save it with an older IR version or upgrade onnxruntime")
    if "opset" in text.lower():
        return ValueError(f"{name}: uses an operator set this onnxruntime cannot run: export with an older opset "
                          "or upgrade onnxruntime")
    return ValueError(f"{name} is not a valid ONNX model (truncated or not ONNX?): {text.splitlines()[0][:200]}")


def load(
    path_or_bytes: str | Path | bytes,
    providers: str | Sequence[str] = "auto",
    *,
    allow_fallback: bool = False,
    device_id: int = 0,
    cudnn_search: str = "HEURISTIC",
    gpu_mem_limit: int | None = None,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    graph_opt: str = "all",
    optimized_path: str | Path | None = None,
    warmup: int = 1,
    overrides: dict[str, Any] | None = None,
) -> Model:
    """Load an ONNX model into one onnxruntime session and read its metadata.

    providers: "auto" (CUDA when onnxruntime-gpu and a GPU are present, else CPU), "cuda", "cpu", or a list.
    Asking for CUDA where it cannot run raises, unless allow_fallback (then a WARNING says CPU runs it).
    cudnn_search: "EXHAUSTIVE" | "HEURISTIC" | "DEFAULT". gpu_mem_limit: bytes for the CUDA arena.
    intra_op_threads / inter_op_threads: CPU threads (0: onnxruntime's default). graph_opt: "disable" | "basic" |
    "extended" | "all". optimized_path: save the optimized graph there. warmup: runs at load (needs metadata or
    fixed input dims). overrides: flat metadata keys (command-line options) laid over the file's own.
    """
    data, name = _read_model(path_or_bytes)
    if graph_opt not in GRAPH_OPT:
        raise ValueError(f"graph_opt must be one of {tuple(GRAPH_OPT)}, but got {graph_opt!r}")
    if cudnn_search.upper() not in CUDNN_SEARCH:
        raise ValueError(f"cudnn_search must be one of {CUDNN_SEARCH}, but got {cudnn_search!r}")
    wanted = resolve_providers(providers)
    options = ort.SessionOptions()
    options.graph_optimization_level = GRAPH_OPT[graph_opt]
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    provider_options = []
    for p in wanted:
        if p == CUDA:
            cuda = {"device_id": device_id, "cudnn_conv_algo_search": cudnn_search.upper()}
            if gpu_mem_limit is not None:
                cuda["gpu_mem_limit"] = int(gpu_mem_limit)
            provider_options.append(cuda)
        else:
            provider_options.append({})
    if CUDA in wanted and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()
    try:
        session = ort.InferenceSession(data, options, providers=wanted, provider_options=provider_options)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types: report them in one line
        raise _session_error(name, exc) from None
    _check_provider(session, wanted, providers, allow_fallback, name)
    meta, meta_error = _describe(session, path_or_bytes, overrides, name)
    model = Model(session, meta, meta_error, name)
    log.info("model %s runs on %s", Path(name).name, model.providers[0])
    if warmup and (model.has_meta or all(isinstance(d, int) for d in model.inputs[0].shape)):
        t0 = time.perf_counter()
        model.warmup(warmup)
        log.debug("warm-up: %d run(s) in %.1f ms", warmup, (time.perf_counter() - t0) * 1e3)
    return model


def _check_provider(
    session: ort.InferenceSession, wanted: list[str], asked: str | Sequence[str], allow_fallback: bool, name: str
) -> None:
    """Raise (or warn, when allowed) if a requested accelerator is not the one running the session."""
    got = session.get_providers()[0]
    if wanted[0] == got:
        return
    message = f"{Path(name).name}: {wanted[0]} was requested but could not run here; {got} runs the model"
    if asked != "auto" and not allow_fallback:
        raise ValueError(f"{message}. Check the GPU driver, CUDA 13 and cuDNN 9, or ask for --provider cpu "
                         "(or allow the fallback)")
    log.warning(message)


def _describe(
    session: ort.InferenceSession, path_or_bytes: str | Path | bytes, overrides: dict[str, Any] | None, name: str
) -> tuple[ModelMeta | None, str]:
    """The model's ModelMeta, or None and the reason it cannot be described."""
    props = session.get_modelmeta().custom_metadata_map
    path = None if isinstance(path_or_bytes, bytes) else path_or_bytes
    try:
        return read_metadata(props, path, overrides), ""
    except ValueError as exc:
        return None, f"{Path(name).name}: {exc}"
