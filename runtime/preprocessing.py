"""The one preprocessing function: letterbox / resize / center crop, color order, normalization, NCHW batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.errors import UserError

RESIZE_MODES = ("letterbox", "resize", "center_crop")
CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
DTYPES = ("float32", "float16", "uint8")  # uint8: the graph takes the resized frames and normalizes them itself
# One resized frame: (image (H', W'[, c]) uint8, the planes feeding the model's channels, its Transform).
Shaped = tuple[np.ndarray, tuple[int, ...], Transform]


@dataclass(frozen=True)
class PreprocessSpec:
    """What a model expects of its input, as written in its metadata.

    input_size: (height, width). resize: "letterbox" (keep the aspect ratio, pad with pad_value, centered),
    "resize" (stretch) or "center_crop" (resize the short side, crop the center). stride: with auto_pad, a
    letterbox pads only to the next multiple of stride (dynamic-size models). channel_order: what the model wants;
    frames arrive as OpenCV BGR uint8. mean, std: per channel, in [0, 1] units: x = (pixel / 255 - mean) / std;
    one value is used for every channel (stored as one per channel). dtype: of the batch; "uint8" is a graph that
    takes the resized frames as they are, (B, H, W, C) BGR (C = 1 for GRAY models), and does the channel order and
    normalization inside (export --uint8-input): preprocess then only resizes and pads.
    """

    input_size: tuple[int, int]
    resize: str = "letterbox"
    pad_value: int = 114
    stride: int = 0
    auto_pad: bool = False
    channel_order: str = "RGB"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        try:
            size = tuple(int(v) for v in self.input_size)
        except (TypeError, ValueError):
            size = ()
        if len(size) != 2 or min(size) < 1:
            raise UserError(f"input_size must be (height, width) with both >= 1, but got {self.input_size!r}")
        object.__setattr__(self, "input_size", size)
        for name, value, allowed in (
            ("resize", self.resize, RESIZE_MODES),
            ("channel_order", self.channel_order, CHANNEL_ORDERS),
            ("dtype", self.dtype, DTYPES),
        ):
            if value not in allowed:
                raise UserError(f"{name} must be one of {allowed}, but got {value!r}")
        if not 0 <= int(self.pad_value) <= 255:
            raise UserError(f"pad_value must be in [0, 255], but got {self.pad_value!r}")
        if self.stride < 0:
            raise UserError(f"stride must be >= 0, but got {self.stride}")
        n = self.channels
        mean, std = tuple(float(v) for v in self.mean), tuple(float(v) for v in self.std)
        mean, std = (mean * n if len(mean) == 1 else mean), (std * n if len(std) == 1 else std)
        if len(mean) != n or len(std) != n:
            raise UserError(f"mean and std must have {n} values for {self.channel_order}, but got {mean}, {std}")
        if min(std) <= 0:
            raise UserError(f"std must be > 0, but got {std}")
        if min(mean) < 0 or max(mean) > 1:
            raise UserError(f"mean must be in [0, 1] units (a pixel mean / 255), but got {mean}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def channels(self) -> int:
        """Channels of the model input: 1 for GRAY, else 3."""
        return 1 if self.channel_order == "GRAY" else 3


@dataclass(frozen=True)
class Preprocessed:
    """batch: (B, C, H, W) float32 or float16, contiguous ((B, H, W, C) uint8 frames for uint8 models).
    transforms: one per image, for mapping boxes back."""

    batch: np.ndarray
    transforms: list[Transform]


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Accept an OpenCV frame: (H, W) or (H, W, 1) gray, (H, W, 3) BGR, (H, W, 4) BGRA, uint8, non-empty."""
    if not isinstance(image, np.ndarray):
        raise UserError(f"{name} must be a numpy uint8 array (an OpenCV BGR frame), but got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise UserError(f"{name} must be uint8 HxWx3 BGR, but got {image.dtype} {image.shape}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise UserError(f"{name} must be HxW, HxWx1, HxWx3 or HxWx4, but got shape {image.shape}")
    if image.size == 0:
        raise UserError(f"{name} must not be empty, but got shape {image.shape}")
    return image


def letterbox(
    image: np.ndarray, size: tuple[int, int], pad_value: int = 114, stride: int = 0, auto_pad: bool = False
) -> tuple[np.ndarray, Transform]:
    """Resize keeping the aspect ratio, then pad to size, centered (Ultralytics / YOLOX).

    image: (h0, w0[, c]) uint8. size: (H, W). With auto_pad and a stride, pad only up to the next stride multiple.
    Returns: (H', W'[, c]) uint8 and its Transform (x_in = x * scale + pad).
    """
    img = check_image(image)
    h0, w0 = img.shape[:2]
    (nh, nw), (top, left), (out_h, out_w) = _letterbox_geometry((h0, w0), size, stride, auto_pad)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h0, w0) else img
    bottom, right = out_h - nh - top, out_w - nw - left
    value = (pad_value,) * (img.shape[2] if img.ndim == 3 else 1)
    out = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    if img.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out, Transform(nw / w0, nh / h0, float(left), float(top), (h0, w0), (out_h, out_w))


def _letterbox_geometry(
    src: tuple[int, int], size: tuple[int, int], stride: int, auto_pad: bool
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Returns (resized (h, w), padding (top, left), output (h, w)) for a letterbox of src into size."""
    h0, w0 = src
    h, w = size
    r = min(h / h0, w / w0)
    nh, nw = max(1, round(h0 * r)), max(1, round(w0 * r))
    out_h, out_w = h, w
    if auto_pad and stride > 0:
        out_h, out_w = -(-nh // stride) * stride, -(-nw // stride) * stride
    return (nh, nw), ((out_h - nh) // 2, (out_w - nw) // 2), (out_h, out_w)


def resize(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Transform]:
    """Stretch to size (H, W). Returns the image and its Transform (different x and y scales)."""
    img = check_image(image)
    h0, w0 = img.shape[:2]
    h, w = size
    out = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    if img.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out, Transform(w / w0, h / h0, 0.0, 0.0, (h0, w0), (h, w))


def center_crop(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, Transform]:
    """Resize so the image covers size (H, W), then crop its center. The crop offset is a negative pad."""
    img = check_image(image)
    h0, w0 = img.shape[:2]
    h, w = size
    r = max(h / h0, w / w0)
    nh, nw = max(h, round(h0 * r)), max(w, round(w0 * r))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    if img.ndim == 3 and resized.ndim == 2:
        resized = resized[:, :, None]
    top, left = (nh - h) // 2, (nw - w) // 2
    out = resized[top : top + h, left : left + w]
    return out, Transform(nw / w0, nh / h0, -float(left), -float(top), (h0, w0), (h, w))


def _planes(image: np.ndarray, order: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """A checked frame and which of its planes feed the model's channels, in the model's order.

    Color order is applied by picking planes while writing the output, not by converting the image.
    """
    c = 1 if image.ndim == 2 else image.shape[2]
    if order == "GRAY":
        if c == 1:
            return image.reshape(image.shape[:2]), (0,)
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if c == 3 else cv2.COLOR_BGRA2GRAY), (0,)
    if c == 1:
        return image.reshape(image.shape[:2]), (0, 0, 0)
    return image, ((2, 1, 0) if order == "RGB" else (0, 1, 2))  # BGR or BGRA frames: planes 0, 1, 2 are B, G, R


def _geometry(image: np.ndarray, spec: PreprocessSpec) -> tuple[np.ndarray, Transform]:
    """The spec's resize mode applied to one frame: (H', W'[, c]) uint8 and its Transform."""
    if spec.resize == "letterbox":
        return letterbox(image, spec.input_size, spec.pad_value, spec.stride, spec.auto_pad)
    if spec.resize == "resize":
        return resize(image, spec.input_size)
    return center_crop(image, spec.input_size)


def _shape(images: np.ndarray | Sequence[np.ndarray], spec: PreprocessSpec, order: str) -> list[Shaped]:
    """Check, color-select (for the channel order given) and resize every frame; all must reach one (H', W')."""
    frames = [images] if isinstance(images, np.ndarray) else list(images)
    if not frames:
        raise UserError("images must hold at least one image, but got an empty list")
    shaped = []
    for i, f in enumerate(frames):
        img, planes = _planes(check_image(f, f"images[{i}]"), order)
        out, t = _geometry(img, spec)
        shaped.append((out, planes, t))
    h, w = shaped[0][0].shape[:2]
    if any(img.shape[:2] != (h, w) for img, _, _ in shaped):
        raise UserError("images must reach one size to be batched; auto_pad gave different sizes: batch them apart")
    return shaped


def _write(out: np.ndarray, shaped: list[Shaped], spec: PreprocessSpec) -> None:
    """Write (pixel / 255 - mean) / std of each shaped image into out: (B, C, H, W) float32 or float16.

    Planes are split into contiguous uint8 arrays, then cv2.addWeighted scales, shifts and converts each in one
    pass, straight into the output plane. Measured (benchmarks/preprocess.py) faster than numpy on strided HWC
    planes, and for float16 much faster than numpy's astype, with the same rounding.
    """
    depth = cv2.CV_16F if spec.dtype == "float16" else cv2.CV_32F
    scale = [1 / (255 * s) for s in spec.std]
    shift = [-m / s for m, s in zip(spec.mean, spec.std, strict=True)]
    for dst, (img, order, _) in zip(out, shaped, strict=True):
        planes = (img,) if img.ndim == 2 else cv2.split(img)
        for ch, plane in enumerate(order):
            cv2.addWeighted(planes[plane], scale[ch], planes[plane], 0.0, shift[ch], dst=dst[ch], dtype=depth)


def preprocess(images: np.ndarray | Sequence[np.ndarray], spec: PreprocessSpec) -> Preprocessed:
    """Frames to the model's input batch, the same way for training checks, evaluation and the apps.

    images: one (H, W[, C]) uint8 BGR/gray/BGRA frame or a list of them (sizes may differ).
    Returns: Preprocessed(batch (B, C, H', W') contiguous in spec.dtype, one Transform per image); for dtype
    "uint8", the resized frames (B, H', W', C) uint8 BGR (gray for GRAY models), which the graph normalizes.
    """
    if spec.dtype == "uint8":
        shaped = _shape(images, spec, "GRAY" if spec.channel_order == "GRAY" else "BGR")
        views = [img[:, :, None] if img.ndim == 2 else img[:, :, :3] for img, _, _ in shaped]  # BGRA: drop alpha
        if len(views) == 1 and views[0].shape[2] == spec.channels:  # the resized frame is new: no copy to make
            return Preprocessed(np.ascontiguousarray(views[0][None]), [shaped[0][2]])
        h, w = views[0].shape[:2]
        batch = np.empty((len(views), h, w, spec.channels), dtype=np.uint8)
        for dst, view in zip(batch, views, strict=True):
            dst[:] = view  # a gray frame for a color model: its plane in every channel
        return Preprocessed(batch, [t for _, _, t in shaped])
    shaped = _shape(images, spec, spec.channel_order)
    h, w = shaped[0][0].shape[:2]
    batch = np.empty((len(shaped), spec.channels, h, w), dtype=spec.dtype)
    _write(batch, shaped, spec)
    return Preprocessed(batch, [t for _, _, t in shaped])
