"""bench(BenchOptions) and select_model(SelectOptions): a model's latency beside others, and the most accurate
model that meets a latency bound, all measured interleaved in one run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.specs import read_image
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime import Model, preprocess
from edgepipe.runtime.bench import Latency, measure, random_inputs

BARE, FULL = "bare session.run", "model(images)"
BOUND, RESIDENT = "io binding, copied in and out", "io binding, resident on device"
# Which measured metric is "accuracy": the first of these that any candidate's evaluation (measured on the file
# itself when export wrote it) carries wins, and every candidate is judged by that one key (a detector's mAP@0.5
# before a classifier's accuracy before a verifier's ROC AUC), so different metrics are never compared.
ACCURACY_KEYS = ("map50", "accuracy", "auc")


@dataclass(frozen=True)
class BenchOptions:
    """model: the .onnx to time (provider, allow_fallback and threads as in ModelOptions; imgsz: the input size of
    a model with a dynamic one). batch: batch sizes. runs: timed runs per batch size, after warmup untimed ones.
    compare: another .onnx timed beside it. torch: a checkpoint or zoo name timed in PyTorch eager beside it (needs
    the train extra). preprocess: an image: also time the full path, model(images), against bare session.run.
    io_binding: also time IO binding (copies, and resident)."""

    model: Path
    provider: str = "auto"
    allow_fallback: bool = False
    threads: int = 0
    imgsz: tuple[int, int] | None = None
    batch: tuple[int, ...] = (1,)
    runs: int = 100
    warmup: int = 10
    compare: Path | None = None
    torch: str = ""
    preprocess: Path | None = None
    io_binding: bool = False


@dataclass(frozen=True)
class BatchTimes:
    """One batch size's latencies, by row name (the model first), and model(images) over bare session.run - 1
    (None without --preprocess)."""

    batch: int
    results: dict[str, Latency]
    overhead: float | None


@dataclass(frozen=True)
class BenchReport:
    """What bench measured: the provider that ran the model, and each batch size's times."""

    provider: str
    batches: list[BatchTimes] = field(default_factory=list)


def bench(options: BenchOptions, progress: bool = False) -> BenchReport:
    """Time the model (and what the options put beside it) at each batch size, interleaved."""
    interleaved = bool(options.compare or options.torch)  # spinning idle threads would slow the other one timed

    def load(path: Path) -> Model:
        return ModelOptions(path, options.provider, options.allow_fallback, options.threads).load(
            warmup=0, spin=not interleaved)

    model = load(options.model)
    other = load(options.compare) if options.compare else None
    if options.preprocess and len(model.inputs) != 1:
        raise UserError(f"--preprocess times one image input, but {options.model.name} has {len(model.inputs)} "
                        "inputs")
    rng = np.random.default_rng(0)
    report = BenchReport(model.providers[0])
    for batch in options.batch:
        if batch < 1:
            raise UserError(f"--batch sizes must be >= 1, but got {batch}")
        fns = batch_functions(options, model, other, batch, rng)
        results = measure(fns, batch, options.runs, options.warmup, progress=progress)
        overhead = results[FULL].p50 / results[BARE].p50 - 1 if BARE in results else None
        report.batches.append(BatchTimes(batch, results, overhead))
    return report


def batch_functions(options: BenchOptions, model: Model, other: Model | None, batch: int,
                    rng: np.random.Generator) -> dict[str, Callable[[], object]]:
    """What one batch size times, by row name: the model, then --compare, --torch and the --preprocess pair."""
    xs = random_inputs(model, batch, rng, options.imgsz)
    if len(xs[0]) != batch:
        raise UserError(f"{options.model.name} has a fixed batch of {len(xs[0])} "
                        f"({model.inputs[0].describe()}): --batch must be {len(xs[0])}")
    fns: dict[str, Callable[[], object]] = {options.model.name: lambda: model.run(*xs)}
    if other is not None and options.compare is not None:  # its own inputs: it may take fp16 or uint8 frames
        others = random_inputs(other, batch, rng, options.imgsz)
        fns[f"compare:{options.compare.name}"] = lambda: other.run(*others)
    if options.torch:
        fns[f"torch:{options.torch}"] = torch_runner(options.torch, xs)
    if options.io_binding:
        binding = model.bind(batch, options.imgsz)
        fns[BOUND] = lambda: binding.run(*xs).outputs()
        fns[RESIDENT] = binding.run
    if options.preprocess:
        frames = [read_image(options.preprocess)] * batch
        ready = {model.inputs[0].name: preprocess(frames, model.spec).batch}
        fns[BARE] = lambda: model.session.run(None, ready)
        fns[FULL] = lambda: model(frames)
    return fns


def torch_runner(source: str, inputs: list[np.ndarray]) -> Callable[[], object]:
    """A call of the PyTorch eager model on inputs (the ONNX model's, as float32), for timing beside it.

    source: a checkpoint written by `edgepipe train` (.pt) or a zoo name (`edgepipe models`, fresh weights:
    latency does not depend on them). torch and `export` are imported here only: edge installs have neither.
    """
    try:
        import torch

        from edgepipe.export.models import build
    except ImportError as exc:
        raise UserError(f"--torch needs PyTorch and edgepipe's export package (pip install 'edgepipe[train]'): "
                        f"{exc}") from None
    if Path(source).suffix in (".pt", ".pth"):
        from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint

        module = model_from_checkpoint(load_checkpoint(source))
    else:
        module = build(source).eval()
    tensors = [torch.from_numpy(x.astype(np.float32)) for x in inputs]
    try:
        with torch.inference_mode():
            module(*tensors)
    except (RuntimeError, TypeError) as exc:
        shapes = [tuple(x.shape) for x in inputs]
        raise UserError(f"--torch {source} does not take the ONNX model's inputs {shapes}: "
                        f"{str(exc).splitlines()[0]}") from None

    def call() -> object:
        with torch.inference_mode():
            return module(*tensors)

    return call


@dataclass(frozen=True)
class SelectOptions:
    """models: .onnx variants of one model. latency_ms: the satisficing bound on p50 latency at batch 1. runs and
    warmup: timed and untimed runs per model. provider: auto, cuda or cpu. imgsz: for dynamic-size models."""

    models: tuple[Path, ...]
    latency_ms: float
    runs: int = 50
    warmup: int = 5
    provider: str = "auto"
    imgsz: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.latency_ms <= 0:
            raise UserError(f"--latency-ms must be > 0, but got {self.latency_ms}")


@dataclass(frozen=True)
class Candidate:
    """One model in the decision table: p50 latency (ms, batch 1) and its accuracy under the chosen metric key, as
    measured on this very file (its metadata's evaluation), and what it was measured on.

    accuracy is None when the file carries no such measurement: such a model cannot be chosen.
    """

    model: str
    p50_ms: float
    accuracy: float | None
    meets_latency: bool
    data: str = ""


@dataclass(frozen=True)
class Selection:
    """The decision table (metric: the accuracy key every candidate is judged by, "" when none carries one), the
    provider that ran them, and the chosen model ("" when none meets the bound with a metric)."""

    latency_ms: float
    metric: str
    provider: str
    candidates: list[Candidate]
    chosen: str


def select_model(options: SelectOptions) -> Selection:
    """The course's satisficing and optimizing metrics: p50 latency at batch 1 (measured here, interleaved, idle
    threads sleeping so that no model slows the next one) must meet the bound; among the models that do, the most
    accurate wins, by the accuracy measured on each file when it was written (its metadata's evaluation; never the
    training metrics a variant inherits from its checkpoint)."""
    models = {str(path): ModelOptions(path, options.provider).load(warmup=0, spin=False) for path in options.models}
    rng = np.random.default_rng(0)
    fns = {}
    for name, model in models.items():
        xs = random_inputs(model, 1, rng, options.imgsz)
        fns[name] = lambda m=model, xs=xs: m.run(*xs)
    latency = measure(fns, 1, options.runs, options.warmup)
    measured = {name: m.meta.evaluation if m.has_meta else {} for name, m in models.items()}
    key = metric_key(list(measured.values()))
    candidates = [
        Candidate(name, round(latency[name].p50, 4), measured[name].get(key), latency[name].p50 <= options.latency_ms,
                  measured[name].get("data", ""))
        for name in models
    ]
    chosen = choose(candidates)
    provider = next(iter(models.values())).providers[0]
    return Selection(options.latency_ms, key, provider, candidates, chosen.model if chosen else "")


def metric_key(metrics: Sequence[dict[str, float]]) -> str:
    """The accuracy key every candidate is judged by: the first of ACCURACY_KEYS that any of them carries, or ""."""
    return next((key for key in ACCURACY_KEYS if any(key in m for m in metrics)), "")


def choose(candidates: Sequence[Candidate]) -> Candidate | None:
    """The most accurate candidate meeting the latency bound; equal accuracy goes to the faster, then the first.

    Returns None when no candidate with an accuracy meets the bound (the command turns that into an error).
    """
    eligible = [c for c in candidates if c.meets_latency and c.accuracy is not None]
    return max(eligible, key=lambda c: (c.accuracy, -c.p50_ms), default=None)
