"""onnxruntime sessions: providers chosen explicitly and reported, inputs checked before onnxruntime sees them."""

from __future__ import annotations

import glob
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.binding import Binding
from edgepipe.runtime.metadata import ModelMeta, read_metadata
from edgepipe.runtime.preprocessing import PreprocessSpec, preprocess
from edgepipe.runtime.retarget import NotRetargetable, retarget, retargetable
from edgepipe.runtime.tensors import check_input, tensor_spec

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
# onnxruntime's CPU thread pool splits each operator's work into blocks that shrink as they are taken (its
# session.dynamic_block_base), instead of one fixed share per thread: when a pipeline's capture or sink thread
# takes a core for a moment, the other worker takes over the rest rather than waiting for it. Chosen by
# measurement (docs/benchmarks.md, "Against Ultralytics").
DYNAMIC_BLOCK_BASE = 4


def cuda_device_present() -> bool:
    """Whether this machine shows an NVIDIA GPU device node (desktop/server GPUs or Jetson)."""
    return bool(glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/nvhost-ctrl-gpu"))


def resolve_providers(providers: str | Sequence[str], allow_fallback: bool = False) -> list[str]:
    """"auto", "cuda", "cpu", an onnxruntime provider name, or a list of them -> the onnxruntime names to request.

    "auto" is CUDA when onnxruntime-gpu and a GPU are present, else CPU. CPU always closes the list so a session
    can be created; whether an accelerator really runs it is checked after creation. A provider this onnxruntime
    build lacks raises, unless allow_fallback (then a WARNING and it is left out).
    """
    available = ort.get_available_providers()
    if providers == "auto":
        return ([CUDA] if CUDA in available and cuda_device_present() else []) + [CPU]
    wanted = []
    for item in [providers] if isinstance(providers, str) else list(providers):
        name = PROVIDER_ALIASES.get(item.lower(), item)
        if name not in ort.get_all_providers():
            raise UserError(f"providers must be 'auto', 'cuda', 'cpu' or onnxruntime provider names, but got {item!r}")
        if name in available:
            wanted.append(name)
        elif allow_fallback:
            log.warning("%s is not in this onnxruntime build (%s): left out", name, ", ".join(available))
        else:
            hint = ": install onnxruntime-gpu" if name == CUDA else ""
            raise UserError(f"provider {item!r} is not available in this onnxruntime build "
                             f"(available: {available}){hint}, or allow the fallback")
    return [p for p in wanted if p != CPU] + [CPU]


class Model:
    """One InferenceSession, the model's metadata, its input/output specs, and the runtime's one preprocess.

    Build it with runtime.load(). model(images) preprocesses frames and runs; model.run(*batches) runs ready
    batches, one per input.
    """

    def __init__(self, session: ort.InferenceSession, meta: ModelMeta | None, meta_error: str, name: str,
                 data: bytes = b"", make_session: Callable[[bytes], ort.InferenceSession] | None = None) -> None:
        self.session = session
        self.name = name
        self._meta = meta
        self._meta_error = meta_error
        self.inputs = [tensor_spec(i) for i in session.get_inputs()]
        self.outputs = [tensor_spec(o) for o in session.get_outputs()]
        self.providers: list[str] = session.get_providers()
        self.on_cuda = self.providers[0] == CUDA
        self.device_id = int(session.get_provider_options().get(CUDA, {}).get("device_id", 0))
        self._names = [i.name for i in self.inputs]
        # The file's bytes stay only where at_size can use them: a big classifier does not hold its weights twice.
        self._data = data if meta is not None and meta.head == "yolov8" else b""
        self._make_session = make_session
        self._sizes: dict[tuple[int, int], Model] = {}

    @property
    def meta(self) -> ModelMeta:
        """The model's description; raises the reason when the file carries none (info and bench still work)."""
        if self._meta is None:
            raise UserError(self._meta_error)
        return self._meta

    @property
    def has_meta(self) -> bool:
        """Whether the model is described (metadata, sidecar or overrides), so model.meta does not raise."""
        return self._meta is not None

    @property
    def spec(self) -> PreprocessSpec:
        """The preprocessing spec, its dtype taken from the model's input (fp16 models get fp16 input, uint8 models
        the resized frames)."""
        spec = self.meta.preprocess
        dtype = {np.dtype(np.float16): "float16", np.dtype(np.uint8): "uint8"}.get(self.inputs[0].dtype, "float32")
        return spec if spec.dtype == dtype else replace(spec, dtype=dtype)

    def check_inputs(self, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Check one array per input (rank, fixed dims, shared dim names, dtype) before onnxruntime sees them.

        batches: e.g. one (B, C, H, W) float32 array. float32 is cast once for fp16 inputs. Returns the arrays
        to feed (contiguous); the caller's arrays are not modified.
        """
        if len(batches) != len(self.inputs):
            raise UserError(f"{Path(self.name).name} takes {len(self.inputs)} input(s) "
                             f"({', '.join(self._names)}), but got {len(batches)} array(s)")
        named: dict[str, tuple[int, str]] = {}
        return [check_input(spec, batch, named) for spec, batch in zip(self.inputs, batches, strict=True)]

    def run(self, *batches: np.ndarray) -> list[np.ndarray]:
        """Run ready batches, one per input in model.inputs order. Returns every output as a numpy array.

        Plain session.run on every provider, chosen by measurement (benchmarks/runtime.py, "io binding" column;
        docs/benchmarks.md, "Runtime: sessions and overhead"): with numpy in and out, an IO binding was no faster
        on CUDA or on the CPU, and handing out a reused output buffer would let the next run overwrite the
        caller's previous outputs. Where inputs or outputs can stay on the device, use model.bind().
        """
        feeds = self.check_inputs(batches)
        return self.session.run(None, dict(zip(self._names, feeds, strict=True)))

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[Transform]]:
        """Preprocess frames (uint8 BGR, one or a list) with the model's spec and run them as one batch.

        Returns (outputs, one Transform per frame mapping input pixels back to the frame's pixels).
        """
        if len(self.inputs) != 1:
            raise UserError(f"{Path(self.name).name} takes {len(self.inputs)} inputs ({', '.join(self._names)}): "
                             "preprocess each and call model.run(...) with one batch per input")
        pre = preprocess(images, self.spec)
        return self.run(pre.batch), pre.transforms

    def bind(self, batch: int = 1, size: tuple[int, int] | None = None) -> Binding:
        """IO binding for batches of this size (see Binding): input buffers on the model's device, outputs kept
        there. size: (H, W) for dynamic-size inputs (else the metadata's)."""
        return Binding(self, batch, size)

    def input_shapes(self, batch: int = 1, size: tuple[int, int] | None = None) -> list[tuple[int, ...]]:
        """A concrete shape per input: fixed dims as declared, dynamic ones filled in.

        Dynamic axis 0 takes batch; for (B, C, H, W) inputs a dynamic C takes the spec's channels (else 3) and
        dynamic H, W take size, else the metadata's input_size. Raises UserError when a dim cannot be known.
        """
        shapes = []
        for spec in self.inputs:
            shape = list(spec.shape)
            if shape and not isinstance(shape[0], int):
                shape[0] = batch
            if len(shape) == 4:
                hw = size or (self.meta.preprocess.input_size if self.has_meta else None)
                fill = [self.meta.preprocess.channels if self.has_meta else 3, *(hw or (None, None))]
                shape[1:] = [d if isinstance(d, int) else f for d, f in zip(shape[1:], fill, strict=True)]
            if not all(isinstance(d, int) for d in shape):
                raise UserError(f"input {spec.describe()} has dynamic dims: give its size (e.g. bench --imgsz H W) "
                                 "or describe the model (metadata, sidecar MODEL.json)")
            shapes.append(tuple(shape))
        return shapes

    @property
    def fixed_size(self) -> tuple[int, int] | None:
        """(H, W) of a one-input (B, C, H, W) model whose height and width are fixed, else None."""
        shape = self.inputs[0].shape if len(self.inputs) == 1 else ()
        if len(shape) != 4 or not isinstance(shape[2], int) or not isinstance(shape[3], int):
            return None
        return shape[2], shape[3]

    def anchor_stride(self) -> tuple[int, str]:
        """(the largest anchor stride, "") when at_size can run this model at other sizes (multiples of that
        stride), else (0, why not): see runtime.retarget."""
        if self.fixed_size is None:
            return 0, "its input size is not fixed"
        if self._make_session is None:
            return 0, "it was not built by runtime.load"
        if not self._data:
            return 0, "only a YOLOv8 detector's anchor grid can be re-targeted"
        try:
            return retargetable(self._data)[-1], ""
        except NotRetargetable as exc:
            return 0, str(exc)

    def at_size(self, size: tuple[int, int]) -> Model:
        """This model for inputs of size (H, W): itself when that is its fixed size, else the same network with its
        anchor grid re-targeted (a fixed-size YOLOv8 export; runtime.retarget), its session made once per size with
        this model's providers and options. Raises UserError saying why a model cannot be re-targeted."""
        size = (int(size[0]), int(size[1]))
        if size == self.fixed_size:
            return self
        if size not in self._sizes:
            make = self._make_session
            try:
                if self.fixed_size is None or make is None or not self._data:
                    raise NotRetargetable(self.anchor_stride()[1])
                data = retarget(self._data, size)
            except NotRetargetable as exc:
                raise UserError(f"{Path(self.name).name} cannot run at {size[0]}x{size[1]}: {exc}") from None
            model = Model(make(data), self._meta, self._meta_error, self.name)
            log.info("model %s runs at %dx%d, re-targeted from its fixed %dx%d, on %s", Path(self.name).name, *size,
                     *(self.fixed_size or size), model.providers[0])
            self._sizes[size] = model
        return self._sizes[size]

    def warmup(self, runs: int = 1) -> None:
        """Run zeros (batch 1) so the first real frame does not pay for allocation and kernel choice."""
        zeros = [np.zeros(shape, spec.dtype) for shape, spec in zip(self.input_shapes(1), self.inputs, strict=True)]
        for _ in range(runs):
            self.run(*zeros)


def _read_model(path_or_bytes: str | Path | bytes) -> tuple[bytes, str]:
    """The model's bytes and a display name. Raises UserError with the path."""
    if isinstance(path_or_bytes, bytes):
        return path_or_bytes, "<bytes>"
    path = Path(path_or_bytes)
    if path.is_dir():
        raise UserError(f"model {path} is a folder, not an .onnx file: give the model file inside it")
    if not path.is_file():
        raise UserError(f"model file not found: {path} (expected an .onnx file)")
    data = path.read_bytes()
    if not data:
        raise UserError(f"model file {path} is empty: re-export or re-download it")
    return data, str(path)


def _session_error(name: str, exc: Exception) -> UserError:
    """onnxruntime's load error as one clear line naming the file."""
    text = str(exc).strip()
    ir = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", text)
    if ir:
        return UserError(f"{name}: ONNX IR version {ir[1]} is newer than this onnxruntime reads (<= {ir[2]}): "
                          "save the model with an older IR version or upgrade onnxruntime")
    opset = re.search(r"Opset (\d+) is under development.*domain (\S+) is till opset (\d+)", text, re.DOTALL)
    if opset:
        return UserError(f"{name}: opset {opset[1]} is newer than this onnxruntime runs ({opset[2]} up to "
                          f"{opset[3]}): export with an older opset or upgrade onnxruntime")
    if "INVALID_PROTOBUF" in text:
        return UserError(f"{name} is not a valid ONNX model (truncated, or not ONNX at all): re-export or "
                          "re-download it")
    detail = text.splitlines()[0].split(" : ", 3)[-1][:300]
    return UserError(f"onnxruntime cannot load {name}: {detail}")


def _check_options(device_id: int, cudnn_search: str, gpu_mem_limit: int | None, intra_op_threads: int,
                   inter_op_threads: int, graph_opt: str, warmup: int) -> None:
    """UserError naming the first load() option out of range."""
    if graph_opt not in GRAPH_OPT:
        raise UserError(f"graph_opt must be one of {tuple(GRAPH_OPT)}, but got {graph_opt!r}")
    if cudnn_search.upper() not in CUDNN_SEARCH:
        raise UserError(f"cudnn_search must be one of {CUDNN_SEARCH}, but got {cudnn_search!r}")
    if gpu_mem_limit is not None and gpu_mem_limit <= 0:
        raise UserError(f"gpu_mem_limit must be > 0 bytes (or None: no limit), but got {gpu_mem_limit}")
    for name, value in (("device_id", device_id), ("intra_op_threads", intra_op_threads),
                        ("inter_op_threads", inter_op_threads), ("warmup", warmup)):
        if value < 0:
            raise UserError(f"{name} must be >= 0, but got {value}")


def _session_options(graph_opt: str, intra_op_threads: int, inter_op_threads: int,
                     optimized_path: str | Path | None, spin: bool) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if not spin:  # idle worker threads sleep instead of spinning: leaves the cores to a pipeline's other threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.dynamic_block_base", str(DYNAMIC_BLOCK_BASE))
    options.graph_optimization_level = GRAPH_OPT[graph_opt]
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3  # errors only: onnxruntime's warnings would repeat what edgepipe reports
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)
    return options


def _provider_options(provider: str, device_id: int, cudnn_search: str, gpu_mem_limit: int | None) -> dict:
    """onnxruntime's options for one provider: device, cuDNN algorithm search and arena limit for CUDA."""
    if provider != CUDA:
        return {}
    options: dict[str, Any] = {"device_id": device_id, "cudnn_conv_algo_search": cudnn_search.upper()}
    if gpu_mem_limit is not None:
        options["gpu_mem_limit"] = int(gpu_mem_limit)
    return options


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
    spin: bool = True,
) -> Model:
    """Load an ONNX model into one onnxruntime session and read its metadata.

    providers: "auto" (CUDA when onnxruntime-gpu and a GPU are present, else CPU; a CUDA that cannot start falls
    back to CPU with a WARNING), "cuda", "cpu", onnxruntime names, or a list. Asking for CUDA where it cannot run
    raises, unless allow_fallback (then a WARNING says what runs it). device_id: the GPU. cudnn_search:
    "EXHAUSTIVE" | "HEURISTIC" | "DEFAULT". gpu_mem_limit: bytes for the CUDA arena.
    intra_op_threads / inter_op_threads: CPU threads (0: onnxruntime's default). graph_opt: "disable" | "basic" |
    "extended" | "all". optimized_path: save the optimized graph there. warmup: zero-input runs at load (skipped
    when dynamic dims cannot be filled). overrides: flat metadata keys (command-line options) over the file's own.
    spin: let idle CPU worker threads spin (onnxruntime's default; fastest alone, but steals cycles from the
    capture and sink threads of a pipelined app).
    """
    _check_options(device_id, cudnn_search, gpu_mem_limit, intra_op_threads, inter_op_threads, graph_opt, warmup)
    data, name = _read_model(path_or_bytes)
    wanted = resolve_providers(providers, allow_fallback)
    options = _session_options(graph_opt, intra_op_threads, inter_op_threads, optimized_path, spin)
    provider_options = [_provider_options(p, device_id, cudnn_search, gpu_mem_limit) for p in wanted]
    if CUDA in wanted and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* wheels, when installed that way

    def open_session(model_bytes: bytes) -> ort.InferenceSession:
        """A session of these options and providers (this file's, or at_size's re-targeted copy of it), checked."""
        try:
            made = ort.InferenceSession(model_bytes, options, providers=wanted, provider_options=provider_options)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types: report them in one line
            raise _session_error(name, exc) from None
        _check_provider(made, wanted, allow_fallback or providers == "auto", name)
        return made

    session = open_session(data)
    meta, meta_error = _describe(session, path_or_bytes, overrides, name)
    model = Model(session, meta, meta_error, name, data, open_session)
    log.info("model %s runs on %s", Path(name).name, model.providers[0])
    if warmup:
        _warm(model, warmup)
    return model


def _check_provider(session: ort.InferenceSession, wanted: list[str], allow_fallback: bool, name: str) -> None:
    """Raise (or warn, when the fallback is allowed) if the first requested provider is not the one running."""
    got = session.get_providers()[0]
    if wanted[0] == got:
        return
    message = f"{Path(name).name}: {wanted[0]} was requested but could not run here; {got} runs the model"
    if not allow_fallback:
        raise UserError(f"{message}. Check the GPU driver, CUDA and cuDNN, or ask for the cpu provider "
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


def _warm(model: Model, runs: int) -> None:
    """Warm-up runs at load, skipped (with a DEBUG line) when dynamic dims cannot be filled or types not fed."""
    try:
        model.input_shapes(1)
    except ValueError as exc:
        log.debug("no warm-up for %s: %s", Path(model.name).name, exc)
        return
    if any(spec.dtype == object for spec in model.inputs):
        log.debug("no warm-up for %s: an input type numpy cannot hold", Path(model.name).name)
        return
    t0 = time.perf_counter()
    model.warmup(runs)
    log.debug("warm-up: %d run(s) in %.1f ms", runs, (time.perf_counter() - t0) * 1e3)
