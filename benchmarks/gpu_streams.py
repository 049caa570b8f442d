"""GPU check of the many-sources detection app, one call: aggregate FPS for 1, 4, 8, 16 sources against bare
batched inference with the inputs resident on the device, in one run.

Run on the GPU machine from the project root, onnxruntime-gpu on PYTHONPATH (../shared/GPU.md) and the four folders
mapped to `edgepipe` (benchmarks/device.sh does both):
    bash benchmarks/device.sh python3 -m benchmarks.gpu_streams [--model M.onnx] [--counts 1 4 8 16]
Without --model it exports the zoo's yolo-large at 640x640 (the course YOLO's large size; fresh weights: speed does
not depend on them) with torch. It runs on CPU-only machines too (--provider cpu --quick), which is how it is
checked here. Goals on an H100/H200: one source >= 250 FPS, eight sources >= 1,000 FPS in all.
Prints, per count: the app's FPS over all sources (JSON Lines written, as a user runs it), the mean frames per
model call, and bare batched inference's FPS at the same batch (IO binding, input resident: the ceiling).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from edgepipe.apps.detect.service import DetectOptions, detect
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.export.data.detection import make_video
from edgepipe.runtime import load


def zoo_model(folder: Path, size: int) -> Path:
    """The zoo's yolo-large exported at size x size (needs torch)."""
    from edgepipe.export.onnx.export import export_onnx, load_source

    return export_onnx(load_source("yolo-large", (size, size), samples=2), folder / f"yolo-large-{size}.onnx").path


def bare_fps(model_path: Path, provider: str, batch: int, runs: int) -> float:
    """Frames per second of session runs on a resident (B, 3, H, W) input: no copies, no host work."""
    model = load(model_path, providers=provider, warmup=0)
    binding = model.bind(batch)
    binding.run(np.random.default_rng(0).uniform(0, 1, binding.shapes[0]).astype(np.float32))
    for _ in range(5):
        binding.run()
    t0 = time.perf_counter()
    for _ in range(runs):
        binding.run()
    return batch * runs / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a detection .onnx (default: the zoo's yolo-large at --size)")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--provider", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--frames", type=int, default=300, help="frames per source video")
    parser.add_argument("--quick", action="store_true", help="60 frames per video, fewer bare runs")
    args = parser.parse_args()
    frames = 60 if args.quick else args.frames
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        model = args.model or zoo_model(out, args.size)
        videos = [out / f"v{k}.mp4" for k in range(max(args.counts))]
        for k, video in enumerate(videos):
            make_video(video, n_frames=frames, size=(480, 640), seed=200 + k)
        print(f"{model.name} on {args.provider}, {frames}-frame 640x480 videos per source:")
        for n in args.counts:
            options = DetectOptions(ModelOptions(model, args.provider), StreamOptions([str(v) for v in videos[:n]],
                                    show=False), jsonl=out / "streams.jsonl")
            summary = detect(options)
            frames_done = sum(s.frames for s in summary.sources.values())
            bare = bare_fps(model, args.provider, summary.batch, 20 if args.quick else 100)
            print(f"  {n:>2} source(s): app {summary.fps:8.1f} FPS in all ({frames_done / summary.batches:.2f} frames "
                  f"per model call) | bare batch {summary.batch} resident {bare:8.1f} FPS | app / bare "
                  f"{summary.fps / bare:.2f}", flush=True)


if __name__ == "__main__":
    main()
