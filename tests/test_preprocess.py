"""The one preprocessing function against a naive OpenCV/numpy reference, and the box round trip."""

import cv2
import numpy as np
import pytest

from edgepipe.postprocess.boxes import Transform, boxes_to_input, boxes_to_original
from edgepipe.runtime.preprocessing import PreprocessSpec, center_crop, letterbox, preprocess, resize

SEEDS = range(12)
MODES = ("letterbox", "resize", "center_crop")


def frame(h=480, w=640, c=3, seed=0):
    """A random uint8 frame: (h, w) when c == 0, else (h, w, c)."""
    shape = (h, w) if c == 0 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def naive_letterbox(img, size, pad=114, out_size=None):
    """Ultralytics-style centered letterbox written plainly: resize, then paste into a filled canvas."""
    h0, w0 = img.shape[:2]
    r = min(size[0] / h0, size[1] / w0)
    nh, nw = max(1, round(h0 * r)), max(1, round(w0 * r))  # never a zero-pixel side
    out_h, out_w = out_size or size
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR).reshape(nh, nw, -1)
    top, left = (out_h - nh) // 2, (out_w - nw) // 2
    out = np.full((out_h, out_w, resized.shape[2]), pad, np.uint8)
    out[top : top + nh, left : left + nw] = resized
    return out


def naive_center_crop(img, size):
    """Resize so the short side covers size, keep the middle: written plainly."""
    h0, w0 = img.shape[:2]
    r = max(size[0] / h0, size[1] / w0)
    nh, nw = max(size[0], round(h0 * r)), max(size[1], round(w0 * r))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (nh - size[0]) // 2, (nw - size[1]) // 2
    return resized[top : top + size[0], left : left + size[1]]


def naive_geometry(img, mode, size, pad=114):
    if mode == "letterbox":
        return naive_letterbox(img, size, pad)
    if mode == "resize":
        return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return naive_center_crop(img, size)


def naive_normalize(bgr, order, mean, std):
    """(H, W, 3) BGR uint8 -> (C, H, W) float64 by the formula (pixel / 255 - mean) / std."""
    planes = {"RGB": bgr[..., ::-1], "BGR": bgr, "GRAY": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[..., None]}[order]
    return ((planes.astype(np.float64) / 255 - np.array(mean)) / np.array(std)).transpose(2, 0, 1)


def random_case(seed):
    """A random frame size, input size, pad value, mean and std."""
    rng = np.random.default_rng(seed)
    h0, w0 = (int(v) for v in rng.integers(20, 900, 2))
    size = tuple(int(v) for v in rng.integers(16, 500, 2))
    mean = tuple(float(v) for v in rng.uniform(0, 1, 3))
    std = tuple(float(v) for v in rng.uniform(0.1, 1, 3))
    return frame(h0, w0, seed=seed), size, int(rng.integers(0, 256)), mean, std


@pytest.mark.parametrize(
    ("h", "w", "size"),
    [
        (480, 640, (416, 416)),  # landscape into a square: pad top and bottom
        (640, 480, (416, 416)),  # portrait: pad left and right
        (100, 300, (256, 320)),  # non-square target
        (416, 416, (416, 416)),  # already the right size: no resize, no padding
        (37, 53, (64, 64)),  # upscaling, odd padding split
        (1, 500, (64, 64)),  # one-pixel-high frame still gives a one-pixel row
    ],
)
def test_letterbox_equals_naive(h, w, size):
    img = frame(h, w)
    out, t = letterbox(img, size)
    np.testing.assert_array_equal(out, naive_letterbox(img, size))
    assert t.dst_size == size and t.src_size == (h, w)


@pytest.mark.parametrize("seed", SEEDS)
def test_geometry_equals_naive_random(seed):
    img, size, pad, _, _ = random_case(seed)
    np.testing.assert_array_equal(letterbox(img, size, pad)[0], naive_letterbox(img, size, pad))
    np.testing.assert_array_equal(resize(img, size)[0], cv2.resize(img, (size[1], size[0])))
    np.testing.assert_array_equal(center_crop(img, size)[0], naive_center_crop(img, size))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("order", ["RGB", "BGR"])
def test_preprocess_equals_naive_pipeline(mode, seed, order):
    # float32 result against the float64 formula: tolerance 1e-5 (float32 rounding of values up to ~10).
    img, size, pad, mean, std = random_case(seed)
    spec = PreprocessSpec(size, resize=mode, pad_value=pad, channel_order=order, mean=mean, std=std)
    got = preprocess(img, spec)
    expected = naive_normalize(naive_geometry(img, mode, size, pad), order, mean, std)
    assert got.batch.shape == (1, 3, *size) and got.batch.dtype == np.float32 and got.batch.flags.c_contiguous
    np.testing.assert_allclose(got.batch[0], expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_float16_is_the_formula_rounded(seed):
    # float16 keeps 11 significant bits: relative error within 2^-11, plus the float32 step before it.
    img, size, pad, mean, std = random_case(seed)
    got = preprocess(img, PreprocessSpec(size, pad_value=pad, mean=mean, std=std, dtype="float16")).batch
    assert got.dtype == np.float16 and got.flags.c_contiguous
    expected = naive_normalize(naive_letterbox(img, size, pad), "RGB", mean, std)
    np.testing.assert_allclose(got[0].astype(np.float64), expected, rtol=2**-11, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "order", "expected_planes"),
    [
        (frame(c=3), "BGR", lambda f: f.transpose(2, 0, 1)),  # BGR kept
        (frame(c=3), "RGB", lambda f: f[..., ::-1].transpose(2, 0, 1)),  # swapped
        (frame(c=4), "RGB", lambda f: f[..., 2::-1].transpose(2, 0, 1)),  # BGRA: alpha dropped
        (frame(c=4), "BGR", lambda f: f[..., :3].transpose(2, 0, 1)),  # BGRA kept as BGR
        (frame(c=4), "GRAY", lambda f: cv2.cvtColor(f, cv2.COLOR_BGRA2GRAY)[None]),  # BGRA to gray
        (frame(c=0), "RGB", lambda f: np.stack([f] * 3)),  # gray to three equal planes
        (frame(c=1), "BGR", lambda f: np.concatenate([f.transpose(2, 0, 1)] * 3)),  # HxWx1 to three planes
        (frame(c=0), "GRAY", lambda f: f[None]),  # HxW gray stays one plane
        (frame(c=1), "GRAY", lambda f: f.transpose(2, 0, 1)),  # HxWx1 gray
        (frame(c=3), "GRAY", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[None]),  # color to gray
    ],
)
def test_channel_orders(image, order, expected_planes):
    # Same size, plain resize: no interpolation, so the planes must match exactly (up to float32 rounding).
    spec = PreprocessSpec(image.shape[:2], resize="resize", channel_order=order)
    got = preprocess(image, spec).batch[0]
    np.testing.assert_allclose(got, expected_planes(image) / 255, atol=1e-6)


@pytest.mark.parametrize("c", [0, 1, 4])
def test_letterbox_pads_every_channel_count(c):
    # Gray and BGRA frames are padded with pad_value like BGR ones, and keep their channel count.
    img = frame(30, 60, c=c)
    out, _ = letterbox(img, (64, 64), pad_value=7)
    expected = naive_letterbox(img, (64, 64), pad=7)
    np.testing.assert_array_equal(out.reshape(expected.shape), expected)
    assert out.ndim == img.ndim


@pytest.mark.parametrize(
    "view",
    [
        lambda f: f[::2, ::3],  # strided rows and columns
        lambda f: f[::-1, ::-1],  # negative strides
        lambda f: f[10:200, 30:500],  # a crop of a larger frame
        lambda f: np.asfortranarray(f),  # Fortran order
        lambda f: np.dstack([f, f[..., :1]])[..., :3],  # a channel slice of a 4-channel array
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_views_equal_contiguous_copies(view, mode):
    img = view(frame(seed=3))
    spec = PreprocessSpec((96, 128), resize=mode)
    np.testing.assert_array_equal(preprocess(img, spec).batch, preprocess(np.ascontiguousarray(img), spec).batch)


def test_batch_of_mixed_sizes_equals_one_by_one():
    frames = [frame(480, 640, seed=4), frame(100, 50, seed=5), frame(720, 1280, seed=6), frame(64, 64, c=0)]
    spec = PreprocessSpec((64, 96), mean=(0.5,), std=(0.25,))
    out = preprocess(frames, spec)
    assert out.batch.shape == (4, 3, 64, 96) and out.batch.flags.c_contiguous
    for i, f in enumerate(frames):
        single = preprocess(f, spec)
        np.testing.assert_array_equal(out.batch[i], single.batch[0])
        assert out.transforms[i] == single.transforms[0]
    assert [t.src_size for t in out.transforms] == [(480, 640), (100, 50), (720, 1280), (64, 64)]
    assert preprocess(tuple(frames), spec).batch.shape == (4, 3, 64, 96)  # any sequence


def test_input_is_not_modified():
    img = frame(seed=7)
    before = img.copy()
    for mode in MODES:
        preprocess([img, img], PreprocessSpec((100, 100), resize=mode, mean=(0.3,), std=(0.2,)))
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize(
    ("h", "w", "stride", "out_shape", "pad"),
    [
        (480, 640, 32, (480, 640), (0, 0)),  # already a multiple of 32: no padding
        (500, 640, 32, (512, 640), (0, 6)),  # 500 -> 512: 12 rows split 6 / 6
        (501, 640, 32, (512, 640), (0, 5)),  # odd padding: the extra row goes to the bottom
        (640, 360, 64, (640, 384), (12, 0)),  # columns padded
        (480, 640, 0, (640, 640), (0, 80)),  # stride 0: auto_pad has nothing to round to, full size
    ],
)
def test_auto_pad_to_stride(h, w, stride, out_shape, pad):
    img = frame(h, w)
    out, t = letterbox(img, (640, 640), stride=stride, auto_pad=True)
    assert out.shape == (*out_shape, 3) and (t.pad_x, t.pad_y) == pad and t.dst_size == out_shape
    np.testing.assert_array_equal(out, naive_letterbox(img, (640, 640), out_size=out_shape))


def test_auto_pad_sizes_that_differ_cannot_be_batched():
    spec = PreprocessSpec((640, 640), stride=32, auto_pad=True)
    with pytest.raises(ValueError, match="images must reach one size to be batched"):
        preprocess([frame(480, 640), frame(640, 480)], spec)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("h", "w"), [(480, 640), (720, 1280), (300, 200), (1000, 37)])
def test_box_round_trip_through_pixels(mode, h, w):
    # Draw a rectangle, preprocess, find it in the network input, map its box back: within one original
    # pixel per input pixel (the edge pixel the interpolation blends), plus half a pixel. A center crop shows
    # only the middle of the frame: the expected box is the rectangle cut to the part the crop keeps.
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = w // 3, h // 3, w // 3 + w // 4, h // 3 + h // 5
    img[y1:y2, x1:x2] = 255
    pre = preprocess(img, PreprocessSpec((416, 416), resize=mode, pad_value=0))
    t = pre.transforms[0]
    seen = boxes_to_original(np.array([[0, 0, 416, 416]], np.float32), t)[0]
    expected = [max(x1, seen[0]), max(y1, seen[1]), min(x2, seen[2]), min(y2, seen[3])]
    ys, xs = np.nonzero(pre.batch[0, 0] > 0.5)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = boxes_to_original(found, t)[0]
    np.testing.assert_allclose(back[0::2], expected[0::2], atol=max(1.0, 1 / t.scale_x) + 0.5)
    np.testing.assert_allclose(back[1::2], expected[1::2], atol=max(1.0, 1 / t.scale_y) + 0.5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_transform_round_trip_within_half_pixel(mode, seed):
    rng = np.random.default_rng(seed)
    img, size, _, _, _ = random_case(seed)
    h, w = img.shape[:2]
    t = preprocess(img, PreprocessSpec(size, resize=mode)).transforms[0]
    xy = rng.uniform(0, [w, h], (20, 2))
    boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(1, 100, (20, 2)), [w, h])], 1)
    np.testing.assert_allclose(boxes_to_original(boxes_to_input(boxes, t), t), boxes, atol=0.5)


def naive_placement(src, size, mode):
    """Where the whole frame lands in the network input, (x1, y1, x2, y2), from the sizes alone."""
    (h0, w0), (h, w) = src, size
    if mode == "resize":
        return [0, 0, w, h]
    if mode == "letterbox":
        r = min(h / h0, w / w0)
        nh, nw = max(1, round(h0 * r)), max(1, round(w0 * r))
        left, top = (w - nw) // 2, (h - nh) // 2
        return [left, top, left + nw, top + nh]
    r = max(h / h0, w / w0)
    nh, nw = max(h, round(h0 * r)), max(w, round(w0 * r))
    left, top = (nw - w) // 2, (nh - h) // 2
    return [-left, -top, nw - left, nh - top]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_transform_places_the_frame_where_the_pixels_went(mode, seed):
    # The Transform comes from the actual resized size: the frame's corners land on the resized area's corners,
    # and a point maps linearly between them.
    img, size, _, _, _ = random_case(seed)
    h0, w0 = img.shape[:2]
    t = preprocess(img, PreprocessSpec(size, resize=mode)).transforms[0]
    assert isinstance(t, Transform) and t.src_size == (h0, w0) and t.dst_size == size
    x1, y1, x2, y2 = naive_placement((h0, w0), size, mode)
    frame_box = np.array([[0, 0, w0, h0], [w0 / 4, h0 / 2, w0 / 2, h0]], np.float32)
    expected = [[x1, y1, x2, y2], [x1 + (x2 - x1) / 4, y1 + (y2 - y1) / 2, x1 + (x2 - x1) / 2, y2]]
    np.testing.assert_allclose(boxes_to_input(frame_box, t), expected, atol=1e-3)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), r"images\[0\] must not be empty, but got shape \(0, 10, 3\)"),  # empty
        (np.zeros((4, 4, 3), np.float64), r"must be uint8 HxWx3 BGR, but got float64 \(4, 4, 3\)"),  # float frame
        (np.zeros((4, 4, 3), np.uint16), r"must be uint8 HxWx3 BGR, but got uint16 \(4, 4, 3\)"),  # 16-bit frame
        (np.zeros((4, 4, 2), np.uint8), r"HxW, HxWx1, HxWx3 or HxWx4, but got shape \(4, 4, 2\)"),  # 2 channels
        (np.zeros((1, 4, 4, 3), np.uint8), r"HxW, HxWx1, HxWx3 or HxWx4, but got shape \(1, 4, 4, 3\)"),  # a batch
        (np.zeros(4, np.uint8), r"HxW, HxWx1, HxWx3 or HxWx4, but got shape \(4,\)"),  # 1-D
        ("frame.jpg", r"must be a numpy uint8 array .* but got str"),  # a path, not pixels
        ([frame(), None], r"images\[1\] must be a numpy uint8 array .* but got NoneType"),  # a failed read in a list
        ([], r"at least one image, but got an empty list"),  # nothing to batch
    ],
)
def test_bad_images(images, message):
    with pytest.raises(ValueError, match=message):
        preprocess(images, PreprocessSpec((8, 8)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resize": "crop"}, r"resize must be one of"),  # unknown mode
        ({"channel_order": "HSV"}, r"channel_order must be one of"),  # unknown order
        ({"input_size": (0, 5)}, r"input_size must be \(height, width\) with both >= 1, but got \(0, 5\)"),
        ({"input_size": 640}, r"input_size must be \(height, width\)"),  # one int, not a pair
        ({"input_size": (8, 8, 3)}, r"input_size must be \(height, width\)"),  # three values
        ({"mean": (0.1, 0.2)}, r"mean and std must have 3 values for RGB"),  # two values for three channels
        ({"channel_order": "GRAY", "mean": (0.1, 0.2, 0.3)}, r"must have 1 values for GRAY"),  # three for one
        ({"std": (0.0,)}, r"std must be > 0"),  # division by zero
        ({"mean": (123.7, 116.3, 103.5)}, r"mean must be in \[0, 1\] units"),  # pixel units by mistake
        ({"pad_value": 300}, r"pad_value must be in \[0, 255\]"),  # not a uint8
        ({"stride": -32}, r"stride must be >= 0, but got -32"),  # negative stride
        ({"dtype": "int8"}, r"dtype must be one of"),  # unsupported output type
    ],
)
def test_bad_specs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(**({"input_size": (8, 8)} | kwargs))


def test_one_mean_and_std_serve_every_channel():
    spec = PreprocessSpec((8, 8), mean=(0.5,), std=(0.25,))
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.25, 0.25, 0.25)
    assert PreprocessSpec((8, 8), channel_order="GRAY").mean == (0.0,)
