"""Export benchmark: every zoo model exports and passes the checker and parity; fp16 size and parity; int8 speed
and accuracy; the detector with NMS in the graph beside the plain model + Python NMS.

Run from the project root: python -m benchmarks.export [--skip-large] [--detector runs/yolo-small/best.pt]
Results go in docs/export.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import onnx
import onnxruntime as ort
import torch

from edgepipe.export.data.samples import sample_frames
from edgepipe.export.evaluate import evaluate
from edgepipe.export.models import REGISTRY
from edgepipe.export.onnx.export import export_onnx, load_source
from edgepipe.export.options import EvalOptions
from edgepipe.postprocess.decoders import decode
from edgepipe.runtime.bench import measure
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.variants import fp16_model, int8_model, output_difference, save_model

LARGE = ("alexnet", "vgg16", "resnet101", "resnet152")


def zoo(tmp: Path, skip_large: bool) -> None:
    print("## Every zoo model: export, checker, parity (max |ORT - PyTorch| on real samples), fp16")
    print(f"{'model':<12}{'input':<14}{'MB':>9}{'export s':>10}{'parity':>11}{'fp16 MB':>9}{'fp16 rel diff':>15}")
    for name, entry in REGISTRY.items():
        if name == "siamese" or (skip_large and name in LARGE):
            continue
        torch.manual_seed(0)
        source = load_source(name, samples=4)
        result = export_onnx(source, tmp / f"{name}.onnx")
        half = save_model(fp16_model(onnx.load(str(result.path))), tmp / f"{name}.fp16.onnx")
        rel = output_difference(result.path, half, source.frames)[1]
        shape = "x".join(str(d) for d in entry.input_shape)
        print(f"{name:<12}{shape:<14}{result.size_mb:>9.2f}{result.seconds:>10.1f}{result.max_abs_diff:>11.2e}"
              f"{half.stat().st_size / 2**20:>9.2f}{rel:>15.2e}")
        for f in (result.path, half):
            f.unlink()


def detector(tmp: Path, checkpoint: Path) -> None:
    print(f"\n## Trained detector {checkpoint}: fp32 vs int8 (head in fp32), PyTorch vs onnxruntime, NMS in graph")
    source = load_source(checkpoint, samples=8)
    fp32 = export_onnx(source, tmp / "det.onnx").path
    calib = preprocess(sample_frames(source.meta, 64, seed=1), source.meta.preprocess).batch
    int8 = save_model(int8_model(fp32, calib), tmp / "det.int8.onnx")
    e2e = export_onnx(source, tmp / "det.nms.onnx", nms=True, conf=0.25, iou=0.45, max_det=100).path
    torch_map, onnx_map, int8_map = (evaluate(EvalOptions(path))["map50"] for path in (checkpoint, fp32, int8))
    print(f"mAP@0.5 on the test split: PyTorch {torch_map:.4f}, ONNX fp32 {onnx_map:.4f} "
          f"(diff {abs(onnx_map - torch_map):.4f}), int8 {int8_map:.4f} (drop {onnx_map - int8_map:.4f})")
    batch = preprocess(source.frames[:1], source.meta.preprocess).batch
    opts = ort.SessionOptions()
    sessions = {n: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                for n, p in (("fp32", fp32), ("int8", int8), ("nms", e2e))}
    meta = source.meta
    transforms = preprocess(source.frames[:1], meta.preprocess).transforms

    def plain_and_python_nms() -> None:
        raw = sessions["fp32"].run(None, {"images": batch})[0]
        decode(meta.head, raw, transforms, 0.25, 0.45, 100, meta.class_names, meta.anchors, meta.anchor_units)

    t = measure({"fp32": lambda: sessions["fp32"].run(None, {"images": batch}),
                 "int8": lambda: sessions["int8"].run(None, {"images": batch}),
                 "fp32 + python decode/NMS": plain_and_python_nms,
                 "nms in graph": lambda: sessions["nms"].run(None, {"images": batch})}, 1, 300, 20)
    for name, lat in t.items():
        print(f"  {name:<28} p50 {lat.p50:.3f} ms  p90 {lat.p90:.3f} ms")
    print(f"  int8 speed-up over fp32: {t['fp32'].p50 / t['int8'].p50:.2f}x (onnxruntime's default threads)")
    one = ort.SessionOptions()
    one.intra_op_num_threads = 1
    single = {n: ort.InferenceSession(str(p), one, providers=["CPUExecutionProvider"]) for n, p in
              (("fp32", fp32), ("int8", int8))}
    t1 = measure({n: (lambda s=s: s.run(None, {"images": batch})) for n, s in single.items()}, 1, 300, 20)
    print(f"  one intra-op thread: fp32 p50 {t1['fp32'].p50:.3f} ms, int8 p50 {t1['int8'].p50:.3f} ms: "
          f"{t1['fp32'].p50 / t1['int8'].p50:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-large", action="store_true", help=f"skip {', '.join(LARGE)}")
    parser.add_argument("--detector", type=Path, default=Path("runs/yolo-small/best.pt"))
    parser.add_argument("--detector-only", action="store_true", help="skip the zoo, measure the detector only")
    args = parser.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.detector_only:
            zoo(Path(tmp), args.skip_large)
        if args.detector.is_file():
            detector(Path(tmp), args.detector)
        else:
            print(f"\n(no trained detector at {args.detector}: run `edgepipe train yolo-small` first)")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
