"""Export a model and the variants asked for (fp16, int8, NMS in the graph): the service behind `edgepipe export`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from edgepipe.export.data.samples import sample_frames
from edgepipe.export.onnx.export import ExportResult, Source, check_nms, export_onnx, load_source
from edgepipe.export.onnx.variants import max_relative_diff, to_fp16, to_int8
from edgepipe.export.onnx.windows import convolutional_source
from edgepipe.export.options import ExportOptions
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.preprocessing import preprocess

CALIBRATION_SEED = 1  # int8 calibration frames are another draw than the parity samples (seed 0)


@dataclass(frozen=True)
class ExportedFile:
    """One file export_model wrote.

    kind: "fp32" (the model), "fp16", "int8", "nms" (decode + NMS inside the graph) or "conv" (a window classifier's
    convolutional form). parity: for fp32, nms and conv, max |onnxruntime - PyTorch| on real samples (nms: of the
    graph before its NMS); for fp16, the max relative
    difference to the fp32 file's output; for int8 None (measure its accuracy: `edgepipe eval`). seconds: the time
    to write it.
    """

    kind: str
    path: Path
    size_bytes: int
    parity: float | None
    seconds: float

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 2**20


@dataclass(frozen=True)
class ExportReport:
    """What export_model wrote: the model's name, the opset, one entry per file, the fp32 model first."""

    name: str
    opset: int
    files: tuple[ExportedFile, ...]

    @property
    def model(self) -> ExportedFile:
        """The fp32 model, the file the variants derive from."""
        return self.files[0]

    def lines(self) -> list[str]:
        """One line per file written: its path, size and parity, or where to measure it."""
        main = self.model
        lines = []
        for f in self.files:
            if f.kind == "fp32":
                lines.append(f"{f.path}: {f.size_mb:.2f} MB, opset {self.opset}, exported in {f.seconds:.1f} s, "
                             f"parity max |ORT - PyTorch| = {f.parity:.2e}")
            elif f.kind == "fp16":
                lines.append(f"{f.path}: {f.size_mb:.2f} MB ({f.size_bytes / main.size_bytes:.2f}x), "
                             f"parity max relative diff vs fp32 = {f.parity:.2e}")
            elif f.kind == "int8":
                lines.append(f"{f.path}: {f.size_mb:.2f} MB; measure its accuracy with `edgepipe eval {f.path}` "
                             f"and its speed with `edgepipe bench {main.path} --compare {f.path}`")
            elif f.kind == "conv":
                lines.append(f"{f.path}: the convolutional form (every window of any input size in one pass), "
                             f"parity max |ORT - PyTorch| = {f.parity:.2e}")
            else:
                lines.append(f"{f.path}: decode + NonMaxSuppression inside the graph (output 'detections' (K, 7))")
        return lines


def export_model(options: ExportOptions) -> ExportReport:
    """Export options.source to options.out, then each variant asked for beside it (OUT.fp16.onnx, OUT.int8.onnx,
    OUT.nms.onnx), in that order. Raises UserError before writing anything for a bad source, a bad opset, or
    nms for a model other than a course YOLO detector, conv for one other than a window classifier, or fp16 and
    int8 for a two-input model (the Siamese network and its head)."""
    source = load_source(options.source, options.imgsz)
    if options.nms:
        check_nms(source)
    conv_source = convolutional_source(source, options.imgsz) if options.conv else None  # refused before writing
    if source.inputs and (options.fp16 or options.int8):
        raise UserError(f"--fp16 and --int8 take models of one image input, but {source.name} takes "
                         f"{len(source.inputs)} inputs: export it in fp32")
    main = export_onnx(source, options.out, options.opset, options.simplify, tolerance=options.tolerance)
    files = [_entry("fp32", main)]
    stem = options.out.with_suffix("")
    if options.fp16:
        files.append(_fp16(source, main.path, stem.with_suffix(".fp16.onnx")))
    if options.int8:
        files.append(_int8(source, main.path, stem.with_suffix(".int8.onnx"), options.calib))
    if options.nms:
        e2e = export_onnx(source, stem.with_suffix(".nms.onnx"), options.opset, options.simplify, nms=True,
                          conf=options.conf, iou=options.iou, tolerance=options.tolerance)
        files.append(_entry("nms", e2e))
    if conv_source is not None:
        conv = export_onnx(conv_source, stem.with_suffix(".conv.onnx"), options.opset, options.simplify,
                           tolerance=options.tolerance)
        files.append(_entry("conv", conv))
    return ExportReport(source.name, main.opset, tuple(files))


def _entry(kind: str, result: ExportResult) -> ExportedFile:
    return ExportedFile(kind, result.path, result.path.stat().st_size, result.max_abs_diff, result.seconds)


def _fp16(source: Source, fp32: Path, out: Path) -> ExportedFile:
    """fp32 converted to fp16 at out, its parity the max relative difference to fp32 on source's samples."""
    t0 = time.perf_counter()
    half = to_fp16(fp32, out)
    seconds = time.perf_counter() - t0
    batch = preprocess(source.frames, source.meta.preprocess).batch  # (N, C, H, W) float32
    return ExportedFile("fp16", half, half.stat().st_size, max_relative_diff(fp32, half, batch), seconds)


def _int8(source: Source, fp32: Path, out: Path, calib: int) -> ExportedFile:
    """fp32 quantized to int8 at out, calibrated on calib frames of the model's data."""
    t0 = time.perf_counter()
    frames = sample_frames(source.meta, calib, seed=CALIBRATION_SEED)
    q = to_int8(fp32, out, preprocess(frames, source.meta.preprocess).batch)
    return ExportedFile("int8", q, q.stat().st_size, None, time.perf_counter() - t0)
