"""The one preprocessing function against a naive OpenCV/numpy reference, and the box round trip."""

import cv2
import numpy as np
import pytest

from postprocess.boxes import boxes_to_input, boxes_to_original
from runtime.preprocess import PreprocessSpec, center_crop, letterbox, preprocess, resize


def frame(h=480, w=640, c=3, seed=0):
    shape = (h, w) if c == 0 else (h, w, c)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def naive_letterbox(img, size, pad=114):
    """Ultralytics-style centered letterbox written plainly."""
    h0, w0 = img.shape[:2]
    r = min(size[0] / h0, size[1] / w0)
    nh, nw = round(h0 * r), round(w0 * r)
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (size[0] - nh) // 2, (size[1] - nw) // 2
    out = np.full((size[0], size[1], 3), pad, np.uint8)
    out[top : top + nh, left : left + nw] = resized
    return out


@pytest.mark.parametrize(("h", "w", "size"), [(480, 640, (416, 416)), (640, 480, (416, 416)), (100, 300, (256, 320)),
                                              (416, 416, (416, 416)), (37, 53, (64, 64))])
def test_letterbox_equals_naive(h, w, size):
    img = frame(h, w)
    out, t = letterbox(img, size)
    np.testing.assert_array_equal(out, naive_letterbox(img, size))
    assert t.dst_size == size and t.src_size == (h, w)


@pytest.mark.parametrize("mode", ["letterbox", "resize", "center_crop"])
def test_preprocess_equals_naive_normalization(mode):
    img = frame(seed=1)
    spec = PreprocessSpec((224, 256), resize=mode, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    got = preprocess(img, spec)
    geo = {"letterbox": letterbox, "resize": resize, "center_crop": center_crop}[mode]
    shaped, _ = geo(img, (224, 256))
    rgb = shaped[..., ::-1].astype(np.float64) / 255
    expected = ((rgb - spec.mean) / spec.std).transpose(2, 0, 1)[None]
    assert got.batch.shape == (1, 3, 224, 256) and got.batch.dtype == np.float32 and got.batch.flags.c_contiguous
    np.testing.assert_allclose(got.batch, expected, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "order", "expected_planes"),
    [
        (frame(c=3), "BGR", lambda f: f.transpose(2, 0, 1)),  # BGR kept
        (frame(c=3), "RGB", lambda f: f[..., ::-1].transpose(2, 0, 1)),  # swapped
        (frame(c=4), "RGB", lambda f: f[..., 2::-1].transpose(2, 0, 1)),  # BGRA: alpha dropped
        (frame(c=0), "RGB", lambda f: np.stack([f] * 3)),  # gray to three equal planes
        (frame(c=1), "GRAY", lambda f: f.transpose(2, 0, 1)),  # HxWx1 gray
        (frame(c=3), "GRAY", lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[None]),  # color to gray
    ],
)
def test_channel_orders(image, order, expected_planes):
    spec = PreprocessSpec(image.shape[:2], resize="resize", channel_order=order,
                          mean=(0.0,), std=(1.0,))
    got = preprocess(image, spec).batch[0]
    np.testing.assert_allclose(got, expected_planes(image) / 255, atol=1e-6)


def test_non_contiguous_batch_and_fp16():
    img = frame(seed=2)
    view = img[::2, ::2]  # a strided view
    spec = PreprocessSpec((64, 64), dtype="float16")
    out = preprocess([view, np.ascontiguousarray(view), frame(100, 50)], spec)
    assert out.batch.shape == (3, 3, 64, 64) and out.batch.dtype == np.float16
    np.testing.assert_array_equal(out.batch[0], out.batch[1])
    assert [t.src_size for t in out.transforms] == [(240, 320), (240, 320), (100, 50)]


def test_auto_pad_to_stride():
    out, t = letterbox(frame(480, 640), (640, 640), stride=32, auto_pad=True)
    assert out.shape == (480, 640, 3) and t.pad_y == 0
    out, t = letterbox(frame(500, 640), (640, 640), stride=32, auto_pad=True)
    assert out.shape == (512, 640, 3) and t.pad_y == 6


@pytest.mark.parametrize("mode", ["letterbox", "resize", "center_crop"])
@pytest.mark.parametrize(("h", "w"), [(480, 640), (720, 1280), (300, 200)])
def test_box_round_trip_through_pixels(mode, h, w):
    # Draw a rectangle, preprocess, find it in the network input, map its box back: within a pixel or so.
    img = np.zeros((h, w, 3), np.uint8)
    x1, y1, x2, y2 = w // 3, h // 3, w // 3 + w // 4, h // 3 + h // 5
    img[y1:y2, x1:x2] = 255
    pre = preprocess(img, PreprocessSpec((416, 416), resize=mode, pad_value=0))
    ys, xs = np.nonzero(pre.batch[0, 0] > 0.5)
    found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
    back = boxes_to_original(found, pre.transforms[0])
    scale = max(1.0, 1 / min(pre.transforms[0].scale_x, pre.transforms[0].scale_y))
    np.testing.assert_allclose(back[0], [x1, y1, x2, y2], atol=1.0 * scale + 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_transform_round_trip_within_half_pixel(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(50, 1500, 2)
    _, t = letterbox(frame(int(h), int(w), seed=seed), (416, 416))
    xy = rng.uniform(0, [w, h], (20, 2))
    boxes = np.concatenate([xy, np.minimum(xy + rng.uniform(1, 100, (20, 2)), [w, h])], 1)
    np.testing.assert_allclose(boxes_to_original(boxes_to_input(boxes, t), t), boxes, atol=0.5)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10, 3), np.uint8), r"must not be empty, but got shape \(0, 10, 3\)"),  # empty
        (np.zeros((4, 4, 3), np.float64), r"must be uint8 HxWx3 BGR, but got float64 \(4, 4, 3\)"),  # float frame
        (np.zeros((4, 4, 2), np.uint8), r"HxW, HxWx1, HxWx3 or HxWx4, but got shape \(4, 4, 2\)"),  # 2 channels
        ("frame.jpg", r"must be a numpy uint8 array .* but got str"),  # a path, not pixels
    ],
)
def test_bad_images(image, message):
    with pytest.raises(ValueError, match=message):
        preprocess(image, PreprocessSpec((8, 8)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resize": "crop"}, r"resize must be one of"),
        ({"channel_order": "HSV"}, r"channel_order must be one of"),
        ({"input_size": (0, 5)}, r"input_size must be \(height, width\)"),
        ({"mean": (0.1, 0.2)}, r"mean and std must have 3 values for RGB"),
        ({"std": (0.0,)}, r"std must be > 0"),
        ({"pad_value": 300}, r"pad_value must be in \[0, 255\]"),
        ({"dtype": "int8"}, r"dtype must be one of"),
    ],
)
def test_bad_specs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PreprocessSpec(**({"input_size": (8, 8)} | kwargs))


def test_empty_list():
    with pytest.raises(ValueError, match="at least one image"):
        preprocess([], PreprocessSpec((8, 8)))
