"""Generated shapes: masks, scenes whose labels match their pixels, and the COCO data set on disk."""

import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from edgepipe.export.data.detection import (
    CLASS_NAMES,
    DatasetConfig,
    draw_shapes,
    ensure_detection_dataset,
    load_split,
    make_detection_dataset,
    render_scene,
    shape_mask,
)
from edgepipe.export.options import SPLITS as SPLIT_NAMES
from edgepipe.postprocess.errors import UserError
from tests.pixels import SEEDS, changed, loop_bbox, noise, union_of_boxes

TINY = DatasetConfig(n_train=6, n_dev=3, n_test=3, image_size=(96, 128), seed=1)


def shape_class(fill: float) -> int:
    """Reference: a whole shape's class from the share of its box it fills (ellipse pi/4, rectangle 1, triangle 1/2)."""
    if fill > 0.95:
        return 1
    return 0 if 0.65 < fill < 0.85 else 2 if 0.45 < fill < 0.6 else -1


@pytest.mark.parametrize(
    ("class_id", "height", "width"),
    [
        (0, 1, 1),  # ellipse, a single pixel
        (0, 12, 12),  # circle at the smallest generated size
        (0, 13, 40),  # flat odd-sized ellipse
        (0, 64, 30),  # tall ellipse
        (1, 2, 3),  # tiny rectangle
        (1, 40, 20),  # rectangle
        (2, 1, 1),  # triangle, a single pixel
        (2, 12, 12),  # smallest triangle
        (2, 30, 61),  # wide triangle
        (2, 80, 40),  # tall triangle
    ],
)
def test_shape_mask_fills_its_patch_with_the_right_area(class_id, height, width):
    mask = shape_mask(class_id, height, width)
    assert mask.shape == (height, width) and mask.dtype == bool
    assert loop_bbox(mask) == [0, 0, width, height]  # inscribed: touches all four sides
    area = (np.pi / 4, 1.0, 0.5)[class_id] * height * width
    assert abs(int(mask.sum()) - area) <= height + width  # rasterization differs from the area by the border only


@pytest.mark.parametrize("seed", SEEDS)
def test_one_shape_label_equals_its_drawn_pixels(seed):
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=1)
    drawn = changed(scene.image, bg)
    assert scene.boxes.dtype == np.float32 and scene.class_ids.dtype == np.int64
    assert scene.boxes.tolist() == [loop_bbox(drawn)]
    x1, y1, x2, y2 = scene.boxes[0].astype(int)
    assert shape_class(drawn[y1:y2, x1:x2].mean()) == scene.class_ids[0]  # the label names the drawn shape
    assert max(x2 - x1, y2 - y1) >= 12 and min(x2 - x1, y2 - y1) <= 64  # min_size .. half the short side


@pytest.mark.parametrize("seed", SEEDS)
def test_every_drawn_pixel_is_labeled_and_boxes_are_tight(seed):
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=6)
    drawn = changed(scene.image, bg)
    n = len(scene.boxes)
    assert 1 <= n <= 6 and scene.class_ids.shape == (n,)
    assert set(scene.class_ids.tolist()) <= set(range(len(CLASS_NAMES)))
    assert not (drawn & ~union_of_boxes(scene.boxes, bg.shape[:2])).any()  # no unlabeled object
    for x1, y1, x2, y2 in scene.boxes.astype(int):
        assert 0 <= x1 < x2 <= bg.shape[1] and 0 <= y1 < y2 <= bg.shape[0]
        # tight: something drawn on each of the box's four border lines
        assert drawn[y1, x1:x2].any() and drawn[y2 - 1, x1:x2].any()
        assert drawn[y1:y2, x1].any() and drawn[y1:y2, x2 - 1].any()


def test_scenes_have_overlapping_objects_but_no_swallowed_one():
    ious = []
    for seed in range(60):
        scene = render_scene(np.random.default_rng(seed), (128, 128), max_objects=6)
        b = scene.boxes.astype(np.float64)
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                iw = max(0.0, min(b[i, 2], b[j, 2]) - max(b[i, 0], b[j, 0]))
                ih = max(0.0, min(b[i, 3], b[j, 3]) - max(b[i, 1], b[j, 1]))
                union = np.prod(b[i, 2:] - b[i, :2]) + np.prod(b[j, 2:] - b[j, :2]) - iw * ih
                ious.append(iw * ih / union)
    assert max(ious) > 0.05  # objects do overlap
    assert max(ious) < 0.9  # but none is drawn over another one that keeps so little that their boxes coincide


@pytest.mark.parametrize("seed", range(3))
def test_render_scene_is_deterministic_and_leaves_inputs_alone(seed):
    a = render_scene(np.random.default_rng(seed), (96, 128))
    b = render_scene(np.random.default_rng(seed), (96, 128))
    other = render_scene(np.random.default_rng(seed + 100), (96, 128))
    assert a.image.shape == (96, 128, 3) and a.image.dtype == np.uint8
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.class_ids, b.class_ids)
    assert not np.array_equal(a.image, other.image)
    bg = noise(seed)
    kept = bg.copy()
    draw_shapes(np.random.default_rng(seed), bg)
    np.testing.assert_array_equal(bg, kept)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: draw_shapes(np.random.default_rng(0), np.zeros((64, 64), np.uint8)), "background must be"),  # gray
        (lambda: draw_shapes(np.random.default_rng(0), np.zeros((64, 64, 3))), "background must be"),  # float
        (lambda: draw_shapes(np.random.default_rng(0), noise(0), max_objects=0), "max_objects must be >= 1"),
        (lambda: draw_shapes(np.random.default_rng(0), noise(0), min_size=0), "min_size must be in"),  # too small
        (lambda: render_scene(np.random.default_rng(0), (40, 40), min_size=21), "min_size must be in"),  # > half side
        (lambda: render_scene(np.random.default_rng(0), (40, 40, 3)), "image_size must be"),  # three numbers
        (lambda: DatasetConfig(n_dev=-1), "n_dev must be >= 0"),  # negative split size
        (lambda: DatasetConfig(image_size=(16, 64)), "min_size must be in"),  # image too small for 12 px objects
    ],
)
def test_scene_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------- COCO data set on disk


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return make_detection_dataset(tmp_path_factory.mktemp("shapes"), TINY)


@pytest.mark.parametrize(("split", "n"), [("train", 6), ("dev", 3), ("test", 3)])
def test_pycocotools_reads_every_split(tiny_root, split, n):
    coco = COCO(str(tiny_root / f"{split}.json"))
    assert len(coco.getImgIds()) == n
    assert len(coco.getAnnIds()) >= n  # at least one object per image
    assert coco.getCatIds() == [1, 2, 3]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES)
    for ann in coco.loadAnns(coco.getAnnIds()):
        img = coco.loadImgs(ann["image_id"])[0]
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= img["width"] and y + h <= img["height"]
        assert ann["area"] == w * h and ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= 3
        assert len(coco.getAnnIds(imgIds=[img["id"]])) >= 1


@pytest.mark.parametrize(("offset", "split"), list(enumerate(SPLIT_NAMES)))
def test_files_hold_the_scenes_of_the_split_generator(tiny_root, offset, split):
    images, boxes, classes, coco = load_split(tiny_root, split)
    rng = np.random.default_rng([TINY.seed, offset])  # the documented per-split stream
    for i in range(len(images)):
        scene = render_scene(rng, TINY.image_size, TINY.max_objects, TINY.min_size)
        np.testing.assert_array_equal(images[i], scene.image)  # PNG is lossless
        np.testing.assert_array_equal(boxes[i], scene.boxes)
        np.testing.assert_array_equal(classes[i], scene.class_ids)
    assert [img["file_name"] for img in coco["images"]] == [f"{split}/{i:05d}.png" for i in range(len(images))]


def test_same_config_gives_identical_files_and_another_seed_does_not(tiny_root, tmp_path):
    again = make_detection_dataset(tmp_path / "again", TINY)
    for split in SPLIT_NAMES:
        assert (tiny_root / f"{split}.json").read_bytes() == (again / f"{split}.json").read_bytes()
        for name in sorted(p.name for p in (tiny_root / split).iterdir()):
            a, b = cv2.imread(str(tiny_root / split / name)), cv2.imread(str(again / split / name))
            np.testing.assert_array_equal(a, b)
    other = make_detection_dataset(tmp_path / "other", DatasetConfig(n_train=6, n_dev=3, n_test=3,
                                                                      image_size=(96, 128), seed=2))
    assert (tiny_root / "train.json").read_bytes() != (other / "train.json").read_bytes()


def test_ensure_reuses_a_matching_data_set_and_regenerates_otherwise(tmp_path):
    root = ensure_detection_dataset(tmp_path / "d", TINY)
    stamp = (root / "train.json").stat().st_mtime_ns
    assert ensure_detection_dataset(root, TINY) == root
    assert (root / "train.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    smaller = DatasetConfig(n_train=2, n_dev=1, n_test=0, image_size=(96, 128), seed=1)
    ensure_detection_dataset(root, smaller)
    assert len(COCO(str(root / "train.json")).getImgIds()) == 2
    assert sorted(p.name for p in (root / "train").iterdir()) == ["00000.png", "00001.png"]  # stale ones removed
    assert list((root / "test").iterdir()) == []
    assert json.loads((root / "config.json").read_text())["n_train"] == 2


def test_load_split_of_a_missing_split_names_it(tmp_path):
    with pytest.raises(UserError, match="no split 'dev'"):
        load_split(tmp_path, "dev")
