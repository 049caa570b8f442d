"""Sliding windows on a 640x480 frame: every 14x14 window cut and classified (explicit) against the convolutional
form's single pass, interleaved, both through onnxruntime on the CPU.

Run from the project root: python -m benchmarks.windows [--model runs/window/window.onnx] [--repeats 5]. --model is
a window classifier exported with --conv (its .conv.onnx beside it); without it, the zoo's window classifier (fresh
weights, seed 0) is exported to a temporary folder (the timing does not depend on the weights). Prints the medians,
the ratio explicit / single pass, and the largest difference between the two score maps.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edgepipe.export.data.detection import render_scene
from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import ExportOptions
from edgepipe.runtime.bench import median_ms
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.session import Model, load

FRAME = (480, 640)  # (height, width)
CHUNK = 4096  # windows per classifier run


def explicit(classifier: Model, image: np.ndarray, window: int, stride: int) -> np.ndarray:
    """Cut every window of image (1, 3, H, W) float32 at stride and classify them in chunks: (C, rows, cols)."""
    views = np.lib.stride_tricks.sliding_window_view(image[0], (window, window), axis=(1, 2))  # (3, H', W', w, w)
    views = views[:, ::stride, ::stride].transpose(1, 2, 0, 3, 4)  # (rows, cols, 3, w, w), a view
    rows, cols = views.shape[:2]
    flat = views.reshape(rows * cols, 3, window, window)  # one copy: the windows as a batch
    out = np.concatenate([classifier.run(flat[i : i + CHUNK])[0] for i in range(0, len(flat), CHUNK)])
    return out.reshape(rows, cols, -1).transpose(2, 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="a window classifier .onnx exported with --conv")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default %(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model
        if path is None:
            torch.manual_seed(0)
            path = export_model(ExportOptions("window", Path(tmp) / "window.onnx", conv=True)).model.path
        classifier = load(path, providers="cpu")
        conv = load(path.with_suffix(".conv.onnx"), providers="cpu")
    window, stride = classifier.meta.window[0], classifier.meta.window_stride
    frame = render_scene(np.random.default_rng(0), FRAME, max_objects=6, min_size=10, max_size=14).image
    image = preprocess(frame, replace(conv.meta.preprocess, input_size=FRAME)).batch  # (1, 3, 480, 640), as it is
    single = conv.run(image)[0][0]
    cut = explicit(classifier, image, window, stride)
    rows, cols = single.shape[1:]
    print(f"## sliding windows on one {FRAME[1]}x{FRAME[0]} frame: {rows} x {cols} = {rows * cols:,} windows of "
          f"{window}x{window} px, stride {stride}; max |explicit - single pass| = {np.abs(cut - single).max():.2e}")
    ms = median_ms({"explicit": lambda: explicit(classifier, image, window, stride),
                    "single": lambda: conv.run(image)}, args.repeats)
    print(f"explicit windows {ms['explicit']:.1f} ms, single pass {ms['single']:.1f} ms per frame (medians of "
          f"{args.repeats}): explicit / single = {ms['explicit'] / ms['single']:.2f}")


if __name__ == "__main__":
    main()
