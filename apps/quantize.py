"""quantize(QuantizeOptions): int8 (and fp16, uint8-input) variants of any ONNX detector `detect` runs, an
Ultralytics YOLOv8/YOLO11 export included, calibrated on the user's images and checked against the original's own
detections on held-back ones; no PyTorch needed."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.specs import SourceSpec, parse_source, read_image
from edgepipe.postprocess.agreement import Agreement, agreement
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Output, check_outputs
from edgepipe.runtime.preprocessing import PreprocessSpec, preprocess
from edgepipe.runtime.session import Model, load
from edgepipe.runtime.variant_report import Variant, VariantReport, latencies
from edgepipe.runtime.variants import fp16_model, int8_model, save_model, uint8_input_model, with_meta

AGREEMENT_IOU = 0.5  # a variant's box agrees with the original's when they overlap this much, same class


@dataclass(frozen=True)
class QuantizeOptions:
    """model: a float32 ONNX detector (what `detect --model` takes; meta: flat metadata overrides as --meta).
    calib: a folder or glob of the user's images; the last `holdout` of them (sorted by name) are held back for the
    agreement check, the others calibrate int8. out: where the variants go, OUT.int8.onnx ... (None: beside the
    model, MODEL.int8.onnx ...); the report goes to OUT.quantize.report.json and .md. fp16, uint8_input: also
    those variants. conf, iou: the detection thresholds both models are compared at. min_agreement: a variant whose
    precision or recall against the original's boxes (same class, IoU >= 0.5) is below it is not written, unless
    keep_failed. bench_runs: interleaved timed runs for the report's p50. progress: bars on stderr.
    """

    model: Path
    calib: str
    out: Path | None = None
    fp16: bool = False
    uint8_input: bool = False
    holdout: int = 16
    conf: float = 0.25
    iou: float = 0.45
    min_agreement: float = 0.95
    keep_failed: bool = False
    bench_runs: int = 100
    progress: bool = True
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "model", Path(self.model))
        if self.holdout < 1 or self.bench_runs < 1:
            raise UserError(f"--holdout and --bench-runs must be >= 1, but got {self.holdout} and {self.bench_runs}")
        if not 0 <= self.min_agreement <= 1:
            raise UserError(f"--min-agreement must be in [0, 1], but got {self.min_agreement}")

    @property
    def stem(self) -> Path:
        return (self.out if self.out is not None else self.model).with_suffix("")


def quantize(options: QuantizeOptions) -> VariantReport:
    """Calibrate and check the variants of options.model; write those that agree with it (their agreement in their
    metadata), and the report. Every output is checked before any work: the model and the calibration images are
    never written over."""
    described = ModelOptions(options.model, "cpu", meta=options.meta)
    calib = parse_source(options.calib)
    check_outputs(planned_outputs(options), [*described.inputs("model"), *calib.inputs("--calib")])
    model = described.load(warmup=0)
    # Both run the file at its own size, so that the variants are compared on the very same inputs.
    reference = Detector(model, options.conf, options.iou, rect=False)  # refuses models detect cannot run
    if model.spec.dtype != "float32" or len(model.inputs) != 1:
        raise UserError(f"quantize takes a float32 model with one image input, but {options.model.name} takes "
                         f"{model.inputs[0].describe()}")
    calibration, held = _images(options, calib, model.spec)
    expected = [reference(image)[0] for image in held]
    if not sum(len(d) for d in expected):
        raise UserError(f"{options.model.name} detects nothing on the {len(held)} held-back images at conf "
                         f"{options.conf:g}: nothing to check the variants against; give images with objects in them "
                         "or a lower --conf")
    proto = onnx.load(str(options.model))
    stem = options.stem
    with tempfile.TemporaryDirectory(prefix="edgepipe-quantize-") as tmp:
        staged = _variants(options, model, proto, calibration, Path(tmp))
        checks = {kind: _check(path, options, held, expected) for kind, (path, _) in staged.items()}
        p50, provider = latencies({"fp32": options.model, **{k: p for k, (p, _) in staged.items()}}, held,
                                  options.bench_runs, provider="cpu", progress=options.progress)
        data = f"{len(held)} held-back images of {options.calib}"
        files = [Variant("fp32", options.model, options.model.stat().st_size, True, False, None,
                         round(p50["fp32"], 4), "agreement", 1.0, 1.0, 0.0, 0.0, "the input, unchanged", True)]
        files += [_finish(kind, path, seconds, stem, checks[kind], p50[kind], options, data)
                  for kind, (path, seconds) in staged.items()]
    budget = (f"agreement >= {options.min_agreement:g}: the lower of precision and recall of the variant's boxes "
              f"against the original's (same class, IoU >= {AGREEMENT_IOU}) at conf {options.conf:g}, iou "
              f"{options.iou:g}")
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    report = VariantReport(options.model.name, opset, data, budget, provider, tuple(files))
    return report.save(Path(f"{stem}.quantize"))


def planned_outputs(options: QuantizeOptions) -> list[Output]:
    """Every file quantize may write: each variant asked for and the report (checked before any work: writable,
    none over the model or a calibration image, none twice)."""
    kinds = ["int8", *(["fp16"] if options.fp16 else []), *(["uint8"] if options.uint8_input else [])]
    stem = options.stem
    return [*(Output(f"the {kind} variant", Path(f"{stem}.{kind}.onnx")) for kind in kinds),
            Output("the report", Path(f"{stem}.quantize.report.json")),
            Output("the report", Path(f"{stem}.quantize.report.md"))]


def _images(options: QuantizeOptions, source: SourceSpec, spec: PreprocessSpec) -> tuple[np.ndarray,
                                                                                          list[np.ndarray]]:
    """The calibration batch (N, C, H, W) float32 by the model's preprocessing, and the held-back frames."""
    if source.kind != "images":
        raise UserError(f"--calib takes a folder or glob of images, but {options.calib!r} is a {source.kind}")
    if len(source.paths) <= options.holdout:
        raise UserError(f"--calib {options.calib} has {len(source.paths)} image(s): it needs more than --holdout "
                         f"{options.holdout} (those are held back to check the variants; the rest calibrate)")
    frames = [read_image(p) for p in source.paths]
    return preprocess(frames[: -options.holdout], spec).batch, frames[-options.holdout :]


def _variants(options: QuantizeOptions, model: Model, proto: onnx.ModelProto, calibration: np.ndarray,
              tmp: Path) -> dict[str, tuple[Path, float]]:
    """int8 always, fp16 and uint8 when asked, staged in tmp with the model's metadata: kind -> (path, seconds)."""
    meta = model.meta
    made: dict[str, tuple[Path, float]] = {}
    t0 = time.perf_counter()
    made["int8"] = (save_model(with_meta(int8_model(options.model, calibration, progress=options.progress), meta),
                               tmp / "int8.onnx"), time.perf_counter() - t0)
    if options.fp16:
        t0 = time.perf_counter()
        made["fp16"] = (save_model(with_meta(fp16_model(proto), meta), tmp / "fp16.onnx"), time.perf_counter() - t0)
    if options.uint8_input:
        t0 = time.perf_counter()
        made["uint8"] = (save_model(uint8_input_model(proto, meta), tmp / "uint8.onnx"), time.perf_counter() - t0)
    return made


def _check(path: Path, options: QuantizeOptions, held: list[np.ndarray], expected: list) -> Agreement:
    """The variant's detections on the held-back frames against the original's."""
    variant = Detector(load(path, providers="cpu", warmup=0), options.conf, options.iou, rect=False)
    return agreement([variant(image)[0] for image in held], expected, AGREEMENT_IOU)


def _finish(kind: str, staged: Path, seconds: float, stem: Path, check: Agreement, p50_ms: float,
            options: QuantizeOptions, data: str) -> Variant:
    """Write the staged variant at STEM.KIND.onnx with its agreement in its metadata, when within the budget (or
    keep_failed). Returns its row of the report."""
    out = Path(f"{stem}.{kind}.onnx")
    over = check.score < options.min_agreement
    evaluation = {"metric": "agreement", "agreement": round(check.score, 6), "precision": round(check.precision, 6),
                  "recall": round(check.recall, 6), "max_shift_px": round(check.max_shift, 4), "data": data,
                  "images": options.holdout, "conf": options.conf, "iou": options.iou, "variant": kind,
                  "reference": 1.0, "drop": round(1.0 - check.score, 6), "budget": options.min_agreement,
                  "within_budget": not over,
                  "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    written = not over or options.keep_failed
    if written:
        proto = onnx.load(str(staged))
        meta = load(staged, providers="cpu", warmup=0).meta
        save_model(with_meta(proto, replace(meta, evaluation=evaluation)), out)
    note = (f"precision {check.precision:.4f}, recall {check.recall:.4f} of {check.reference_boxes} boxes, "
            f"max shift {check.max_shift:.2f} px")
    return Variant(kind, out, (out if written else staged).stat().st_size, written, over, None, round(p50_ms, 4),
                   "agreement", round(check.score, 6), 1.0, round(1.0 - check.score, 6), round(seconds, 2), note)
