"""Export a model and the variants asked for (fp16, int8, NMS in the graph, uint8 input, convolutional form), each
measured on held-out data and written only when its accuracy holds: the service behind `edgepipe export`."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from edgepipe.export.data.samples import sample_frames
from edgepipe.export.onnx.accuracy import METRIC_NAMES, evaluable, judged, measure
from edgepipe.export.onnx.export import Source, build_onnx, check_nms, load_source
from edgepipe.export.onnx.windows import convolutional_source
from edgepipe.export.options import ExportOptions
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input, Output, check_outputs
from edgepipe.runtime.metadata import from_metadata_props
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.variant_report import Variant, VariantReport, latencies
from edgepipe.runtime.variants import (
    fp16_model,
    int8_model,
    onnx_path,
    output_difference,
    save_model,
    uint8_input_model,
    with_meta,
)

CALIBRATION_SEED = 1  # int8 calibration frames are another draw than the parity samples (seed 0)


@dataclass(frozen=True)
class _Staged:
    """A file made in the staging folder, before its accuracy decides whether it is written at out.

    parity: as Variant.parity; parity_note: why the parity failed ("" when it passed)."""

    kind: str
    staged: Path
    out: Path
    parity: float | None
    parity_note: str
    seconds: float


def export_model(options: ExportOptions) -> VariantReport:
    """Export options.source to options.out, then each variant asked for beside it (OUT.fp16.onnx, OUT.int8.onnx,
    OUT.nms.onnx, OUT.uint8.onnx, OUT.conv.onnx); measure every file's accuracy on the held-out split (the models
    edgepipe has data for) and its p50 latency (interleaved); write the fp32 file and each variant within its
    budget (parity, and a drop of at most max_drop below fp32), with its evaluation in its metadata; save the report
    beside the model (OUT.report.json, OUT.report.md). Raises UserError before writing anything for a bad source, a
    bad opset, --nms for a model other than a course YOLO detector, --conv for one other than a window classifier,
    fp16, int8 or uint8 input for a two-input model (the Siamese network and its head), or a failed fp32 parity
    check; every output is checked first (runtime/files.py: writable, an .onnx path, none over the source)."""
    stem = onnx_path(options.out).with_suffix("")
    check_outputs(planned_outputs(options, stem), [Input("source", Path(options.source))])
    source = load_source(options.source, options.imgsz)
    if options.nms:
        check_nms(source)
    conv_source = convolutional_source(source, options.imgsz) if options.conv else None
    if source.inputs and (options.fp16 or options.int8 or options.uint8_input):
        raise UserError(f"--fp16, --int8 and --uint8-input take models of one image input, but {source.name} takes "
                         f"{len(source.inputs)} inputs: export it in fp32")
    built = build_onnx(source, options.opset, options.simplify, tolerance=options.tolerance)
    with tempfile.TemporaryDirectory(prefix="edgepipe-export-") as tmp:
        fp32 = save_model(built.proto, Path(tmp) / "fp32.onnx")
        staged = [_Staged("fp32", fp32, options.out, built.max_abs_diff, "", built.seconds)]
        staged += _variants(source, options, built.proto, fp32, Path(tmp), stem)
        if conv_source is not None:
            conv = build_onnx(conv_source, options.opset, options.simplify, tolerance=options.tolerance)
            staged.append(_Staged("conv", save_model(conv.proto, Path(tmp) / "conv.onnx"), Path(f"{stem}.conv.onnx"),
                                  conv.max_abs_diff, "", conv.seconds))
        evaluations = _evaluations(source, options, staged)
        p50, provider = latencies({s.kind: s.staged for s in staged}, source.frames, options.bench_runs,
                                  progress=options.progress, inputs=source.inputs)
        files = tuple(_finish(s, evaluations.get(s.kind, {}), p50[s.kind], options) for s in staged)
    data = evaluations["fp32"]["data"] if evaluations else f"nothing: edgepipe has no held-out data for {source.name}"
    metric = METRIC_NAMES.get(evaluations["fp32"]["metric"], "") if evaluations else ""
    budget = (f"{metric} at most {options.max_drop:g} below fp32's; " if metric else "") + \
        f"fp16 max relative difference <= {options.fp16_tolerance:g}; uint8 max |difference| <= " \
        f"{options.uint8_tolerance:g}"
    report = VariantReport(source.name, built.opset, data, budget, provider, files)
    return report.save(stem)


def planned_outputs(options: ExportOptions, stem: Path) -> list[Output]:
    """Every file export_model may write: the model, each variant asked for, the report (checked before any work:
    writable, none over the source checkpoint, none twice)."""
    kinds = [k for k, wanted in (("fp16", options.fp16), ("int8", options.int8), ("nms", options.nms),
                                 ("uint8", options.uint8_input), ("conv", options.conv)) if wanted]
    return [Output("--out", options.out), *(Output(f"the {k} variant", Path(f"{stem}.{k}.onnx")) for k in kinds),
            Output("the report", Path(f"{stem}.report.json")), Output("the report", Path(f"{stem}.report.md"))]


def _variants(source: Source, options: ExportOptions, fp32_proto: onnx.ModelProto, fp32: Path, tmp: Path,
              stem: Path) -> list[_Staged]:
    """The variants asked for, made from the fp32 file into tmp, with their parity."""
    staged = []
    if options.fp16:
        t0 = time.perf_counter()
        half = save_model(fp16_model(fp32_proto), tmp / "fp16.onnx")
        rel = output_difference(fp32, half, source.frames)[1]
        note = f"parity {rel:.2e} > {options.fp16_tolerance:g}" if rel > options.fp16_tolerance else ""
        staged.append(_Staged("fp16", half, Path(f"{stem}.fp16.onnx"), rel, note, time.perf_counter() - t0))
    if options.int8:
        t0 = time.perf_counter()
        frames = sample_frames(source.meta, options.calib, seed=CALIBRATION_SEED)
        calibration = preprocess(frames, source.meta.preprocess).batch
        q = save_model(int8_model(fp32, calibration, progress=options.progress), tmp / "int8.onnx")
        staged.append(_Staged("int8", q, Path(f"{stem}.int8.onnx"), None, "", time.perf_counter() - t0))
    if options.nms:
        e2e = build_onnx(source, options.opset, options.simplify, nms=True, conf=options.conf, iou=options.iou,
                         tolerance=options.tolerance)
        path = save_model(e2e.proto, tmp / "nms.onnx")
        staged.append(_Staged("nms", path, Path(f"{stem}.nms.onnx"), e2e.max_abs_diff, "", e2e.seconds))
    if options.uint8_input:
        t0 = time.perf_counter()
        meta = from_metadata_props({p.key: p.value for p in fp32_proto.metadata_props})
        frames_in = save_model(uint8_input_model(fp32_proto, meta), tmp / "uint8.onnx")
        diff = output_difference(fp32, frames_in, source.frames)[0]
        note = f"parity {diff:.2e} > {options.uint8_tolerance:g}" if diff > options.uint8_tolerance else ""
        staged.append(_Staged("uint8", frames_in, Path(f"{stem}.uint8.onnx"), diff, note,
                              time.perf_counter() - t0))
    return staged


def _evaluations(source: Source, options: ExportOptions, staged: list[_Staged]) -> dict[str, dict]:
    """Each staged file's evaluation judged against the fp32 file measured the same way ({} for models without
    held-out data). The NMS file is measured at its graph's thresholds, and so is its fp32 reference; the
    convolutional form is another task than its classifier (a detector): its parity is its check."""
    if not evaluable(source.meta):
        return {}
    fp32 = staged[0].staged
    reference = measure(fp32, options, kind="fp32")
    out = {"fp32": judged(reference, reference, "fp32", options.max_drop)}
    for s in staged[1:]:
        if s.kind == "conv":
            continue
        if s.kind == "nms":
            at_graph = measure(fp32, options, options.conf, options.iou, kind="fp32 at the NMS graph's thresholds")
            out[s.kind] = judged(measure(s.staged, options, kind=s.kind), at_graph, s.kind, options.max_drop)
        else:
            out[s.kind] = judged(measure(s.staged, options, kind=s.kind), reference, s.kind, options.max_drop)
    return out


def _finish(s: _Staged, evaluation: dict, p50_ms: float, options: ExportOptions) -> Variant:
    """Write the staged file at its place with its evaluation in its metadata, unless it is over its budget (then
    only with keep_failed); the fp32 file is always written. Returns its row of the report."""
    over_accuracy = bool(evaluation) and not evaluation["within_budget"]
    metric = evaluation.get("metric", "")
    notes = [s.parity_note] if s.parity_note else []
    if s.kind == "nms" and evaluation:
        notes.append(f"at the graph's conf {evaluation['conf']:g}, iou {evaluation['iou']:g}, as its fp32 reference")
    if over_accuracy:
        notes.append(f"{METRIC_NAMES[metric]} {evaluation[metric]:.4f} is {evaluation['drop']:.4f} below fp32's "
                     f"{evaluation['reference']:.4f} (budget {options.max_drop:g})")
    over = s.kind != "fp32" and (over_accuracy or bool(s.parity_note))
    written = not over or options.keep_failed
    if written:
        proto = onnx.load(str(s.staged))
        meta = from_metadata_props({p.key: p.value for p in proto.metadata_props})
        save_model(with_meta(proto, replace(meta, evaluation=evaluation)), s.out)
    size = (s.out if written else s.staged).stat().st_size
    return Variant(s.kind, s.out, size, written, over, s.parity, round(p50_ms, 4), metric, evaluation.get(metric),
                   evaluation.get("reference"), evaluation.get("drop"), round(s.seconds, 2), "; ".join(notes))
