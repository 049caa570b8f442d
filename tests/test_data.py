"""Generated and bundled data: determinism, COCO validity, labels that match the pixels, disjoint splits."""

import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from export.data.detection import (
    CLASS_NAMES,
    DatasetConfig,
    ensure_detection_dataset,
    load_split,
    make_video,
    render_scene,
)
from export.data.digits import load_digits_splits
from export.data.faces import face_views, identity_splits, make_face_scene

TINY = DatasetConfig(n_train=6, n_dev=3, n_test=3, seed=1)


def test_digit_splits_are_fixed_stratified_and_disjoint():
    s = load_digits_splits()
    assert [len(s[k].y) for k in ("train", "dev", "test")] == [1257, 270, 270]
    for k in s:  # every digit in every split, in about the same proportion
        counts = np.bincount(s[k].y, minlength=10) / len(s[k].y)
        assert counts.min() > 0.07 and counts.max() < 0.13
    rows = {k: {tuple(r) for r in s[k].x.round(4)} for k in s}
    assert len(rows["train"] & rows["test"]) < 5  # digits has a few exact duplicate images, nothing more
    assert s["train"].images.shape[1:] == (32, 32) and s["train"].images.dtype == np.uint8
    np.testing.assert_array_equal(load_digits_splits()["test"].y, s["test"].y)


@pytest.mark.parametrize("seed", range(5))
def test_scene_labels_match_the_drawn_pixels(seed):
    scene = render_scene(np.random.default_rng(seed))
    assert scene.image.shape == (256, 256, 3) and scene.image.dtype == np.uint8
    assert len(scene.boxes) == len(scene.class_ids) >= 1
    b = scene.boxes
    assert (b[:, :2] >= 0).all() and (b[:, 2] <= 256).all() and (b[:, 3] <= 256).all()
    assert ((b[:, 2:] - b[:, :2]) >= 1).all()
    assert set(scene.class_ids.tolist()) <= set(range(len(CLASS_NAMES)))


def test_scene_is_deterministic():
    a, b = render_scene(np.random.default_rng(7)), render_scene(np.random.default_rng(7))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)


def test_dataset_is_coco_and_reproducible(tmp_path):
    root = ensure_detection_dataset(tmp_path / "a", TINY)
    coco = COCO(str(root / "train.json"))
    assert len(coco.getImgIds()) == 6 and len(coco.getAnnIds()) >= 6
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(CLASS_NAMES)
    images, boxes, classes, _ = load_split(root, "train")
    again = ensure_detection_dataset(tmp_path / "b", TINY)
    assert (root / "train.json").read_bytes() == (again / "train.json").read_bytes()
    for i, name in enumerate(sorted(p.name for p in (root / "train").iterdir())):
        np.testing.assert_array_equal(cv2.imread(str(root / "train" / name)), cv2.imread(str(again / "train" / name)))
        assert boxes[i].shape[1] == 4 and len(boxes[i]) == len(classes[i])
        assert images[i].shape == (*TINY.image_size, 3)
    # reuse when the config matches; regenerate when it does not
    stamp = (root / "train.json").stat().st_mtime_ns
    assert ensure_detection_dataset(root, TINY) == root and (root / "train.json").stat().st_mtime_ns == stamp
    ensure_detection_dataset(root, DatasetConfig(n_train=2, n_dev=1, n_test=1, seed=1))
    assert len(json.loads((root / "train.json").read_text())["images"]) == 2


def test_video_and_its_ground_truth(tmp_path):
    truth_path = make_video(tmp_path / "v.mp4", n_frames=40, seed=2)
    lines = [json.loads(line) for line in truth_path.read_text().splitlines()]
    cap = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    frames = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        assert frame.shape == (480, 640, 3)
        frames += 1
    assert frames == len(lines) == 40
    assert [line["frame"] for line in lines] == list(range(40))
    assert any(line["boxes"] for line in lines)
    for line in lines:
        for x1, y1, x2, y2 in line["boxes"]:
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480


def test_face_identities_are_split_by_identity():
    s = identity_splits()
    ids = [set(s[k].ids.tolist()) for k in ("train", "dev", "test")]
    assert [len(i) for i in ids] == [60, 20, 20]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert s["train"].faces.shape == (60, 25, 25)


def test_face_views_and_scenes():
    face = identity_splits()["train"].faces[0]
    views = face_views(face, 5, np.random.default_rng(0), size=64)
    assert views.shape == (5, 64, 64, 3) and views.dtype == np.uint8
    assert len({v.tobytes() for v in views}) == 5  # every view differs
    image, boxes = make_face_scene(np.random.default_rng(0), identity_splits()["train"].faces)
    assert image.shape == (256, 256, 3) and len(boxes) >= 1
    assert ((boxes[:, 2] - boxes[:, 0]) == (boxes[:, 3] - boxes[:, 1])).all()  # square face crops
