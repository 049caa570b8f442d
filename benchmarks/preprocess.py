"""Benchmark of runtime.preprocess beside a naive OpenCV/numpy pipeline and cv2.dnn.blobFromImage, interleaved.

Run from the project root: python -m benchmarks.preprocess [--quick]. Prints medians (ms) and ratios
(baseline / preprocess: above 1 means preprocess is faster).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from edgepipe.runtime.bench import median_ms
from edgepipe.runtime.preprocessing import PreprocessSpec, letterbox, preprocess, resize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def naive(frames: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """The obvious pipeline: cv2.resize + copyMakeBorder, BGR->RGB, astype, normalize, transpose, stack.

    frames: list of (H, W, 3) uint8 BGR. Returns: (B, 3, H', W') float32 (letterbox or plain resize).
    """
    h, w = spec.input_size
    out = []
    for img in frames:
        if spec.resize == "letterbox":
            h0, w0 = img.shape[:2]
            r = min(h / h0, w / w0)
            nh, nw = round(h0 * r), round(w0 * r)
            small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
            top, left = (h - nh) // 2, (w - nw) // 2
            value = (spec.pad_value,) * 3
            img = cv2.copyMakeBorder(small, top, h - nh - top, left, w - nw - left, cv2.BORDER_CONSTANT, value=value)
        else:
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
        x = (img[:, :, ::-1].astype(np.float32) / 255 - np.float32(spec.mean)) / np.float32(spec.std)
        out.append(x.transpose(2, 0, 1))  # (3, H', W')
    return np.ascontiguousarray(np.stack(out))


def blob(frames: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    """Geometry by runtime.preprocess, then cv2.dnn.blobFromImages for the fused swap/scale/NCHW step.

    blobFromImages subtracts the mean before scaling: mean in pixels, one scale for all channels, so it only
    matches preprocess when std is the same for every channel. Returns: (B, 3, H', W') float32.
    """
    geometry = letterbox if spec.resize == "letterbox" else resize
    shaped = [geometry(img, spec.input_size)[0] for img in frames]
    mean = tuple(255 * m for m in spec.mean)  # R, G, B: OpenCV swaps the mean with the channels
    return cv2.dnn.blobFromImages(shaped, 1 / (255 * spec.std[0]), mean=mean, swapRB=True)


def cases() -> list[tuple[str, list[np.ndarray], PreprocessSpec]]:
    """(name, frames, spec) for the sizes the apps meet."""
    rng = np.random.default_rng(0)

    def frames(h: int, w: int, n: int = 1) -> list[np.ndarray]:
        return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]

    return [
        ("640x480 -> 416 letterbox f32", frames(480, 640), PreprocessSpec((416, 416))),
        ("640x480 -> 416 letterbox f16", frames(480, 640), PreprocessSpec((416, 416), dtype="float16")),
        ("1280x720 -> 640 letterbox f32", frames(720, 1280), PreprocessSpec((640, 640))),
        ("640x480 -> 224 resize imagenet", frames(480, 640),
         PreprocessSpec((224, 224), resize="resize", mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("8 x 640x480 -> 416 letterbox", frames(480, 640, 8), PreprocessSpec((416, 416))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    repeats = 100 if parser.parse_args().quick else 400
    print(f"## preprocess, median ms over {repeats} interleaved repeats (OpenCV threads: {cv2.getNumThreads()})")
    print(f"{'case':<34}{'preprocess':>11}{'naive':>9}{'blob':>9}{'naive/pre':>11}{'blob/pre':>10}")
    for name, frames, spec in cases():
        np.testing.assert_allclose(preprocess(frames, spec).batch, naive(frames, spec), atol=1e-3)
        fns = {
            "pre": lambda f=frames, s=spec: preprocess(f, s),
            "naive": lambda f=frames, s=spec: naive(f, s),
            "blob": lambda f=frames, s=spec: blob(f, s),
        }
        ms = median_ms(fns, repeats if len(frames) == 1 else repeats // 8)
        print(f"{name:<34}{ms['pre']:>11.3f}{ms['naive']:>9.3f}{ms['blob']:>9.3f}"
              f"{ms['naive'] / ms['pre']:>11.2f}{ms['blob'] / ms['pre']:>10.2f}")


if __name__ == "__main__":
    main()
