"""The digits: fixed, stratified train/dev/test splits of scikit-learn's digits, and LeNet-5's upsampled images."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from torch.nn import functional as F

from edgepipe.export.data.digits import load_digits_splits, upsample_digits
from edgepipe.export.options import SPLITS as SPLIT_NAMES


def test_digit_splits_have_the_documented_sizes_and_partition_the_data():
    s = load_digits_splits()
    assert [len(s[k].y) for k in SPLIT_NAMES] == [1257, 270, 270]
    rows = [set(s[k].index.tolist()) for k in SPLIT_NAMES]
    assert not (rows[0] & rows[1] or rows[0] & rows[2] or rows[1] & rows[2])
    assert set.union(*rows) == set(range(1797))


def test_digit_splits_are_stratified():
    s, y = load_digits_splits(), load_digits().target
    for digit in range(10):
        n = int((y == digit).sum())
        for name, share in (("train", 0.7), ("dev", 0.15), ("test", 0.15)):
            assert abs(int((s[name].y == digit).sum()) - share * n) <= 1, (digit, name)


def test_digit_values_are_sklearns_scaled_to_unit_range():
    s, data = load_digits_splits(), load_digits()
    for name in SPLIT_NAMES:
        split = s[name]
        assert split.x.dtype == np.float32 and split.x.shape[1] == 64
        assert split.x.min() >= 0 and split.x.max() <= 1
        np.testing.assert_allclose(split.x, data.data[split.index] / 16, atol=1e-7)
        np.testing.assert_array_equal(split.y, data.target[split.index])


def test_lenet_images_are_bilinear_upsamplings_of_the_digits():
    s, data = load_digits_splits(), load_digits()
    split = s["dev"]
    assert split.images.shape == (270, 32, 32) and split.images.dtype == np.uint8
    levels = torch.from_numpy(np.round(data.images[split.index] * 255 / 16))[:, None]  # (N, 1, 8, 8)
    ref = F.interpolate(levels, size=(32, 32), mode="bilinear", align_corners=False)[:, 0].numpy()
    assert np.abs(split.images - ref).max() <= 1  # OpenCV's fixed-point weights round within one gray level


def test_digit_splits_are_fixed():
    a, b = load_digits_splits(), load_digits_splits()
    for name in SPLIT_NAMES:
        np.testing.assert_array_equal(a[name].index, b[name].index)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 8, 9)), "shape \\(N, 8, 8\\)"),  # not 8x8
        (np.zeros((8, 8)), "shape \\(N, 8, 8\\)"),  # one image without the batch axis
        (np.full((1, 8, 8), 17.0), "levels in \\[0, 16\\]"),  # above the 16 gray levels
        (np.full((1, 8, 8), -1.0), "levels in \\[0, 16\\]"),  # negative
    ],
)
def test_upsample_digits_rejects(images, message):
    with pytest.raises(ValueError, match=message):
        upsample_digits(images)
