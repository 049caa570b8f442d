"""Local data: fixed digit splits, generated scenes whose labels match their pixels, COCO files, videos, faces.

Labels are checked against the pixels: shapes are drawn on a uniform-noise background, so the pixels that changed
are exactly the drawn ones, and their bounding boxes (computed here with plain loops) must equal the labels.
"""

import json

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from pycocotools.coco import COCO
from sklearn.datasets import load_digits
from torch.nn import functional as F

from edgepipe.export.augment import mirror, scale_crop
from edgepipe.export.data.detection import (
    CLASS_NAMES,
    DatasetConfig,
    draw_shapes,
    ensure_detection_dataset,
    load_split,
    make_detection_dataset,
    make_video,
    render_scene,
    shape_mask,
)
from edgepipe.export.data.digits import load_digits_splits, upsample_digits
from edgepipe.export.data.faces import (
    MIN_FACE,
    SPLITS,
    face_crops,
    face_views,
    identity_batch,
    identity_splits,
    kiosk_face_views,
    make_face_scene,
    paste_faces,
)
from edgepipe.postprocess.errors import UserError

SEEDS = range(24)
SPLIT_NAMES = ("train", "dev", "test")
TINY = DatasetConfig(n_train=6, n_dev=3, n_test=3, image_size=(96, 128), seed=1)


def noise(seed: int, size: tuple[int, int] = (128, 160)) -> np.ndarray:
    """A uniform-noise BGR background: a drawn pixel equals it in all three channels with odds ~1e-7."""
    return np.random.default_rng(10_000 + seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def changed(image: np.ndarray, background: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels that differ from the background in any channel."""
    return (image != background).any(axis=2)


def loop_bbox(mask: np.ndarray) -> list[int] | None:
    """Reference: [x1, y1, x2, y2] pixel edges of the True pixels by plain loops, None when there are none."""
    rows = [y for y in range(mask.shape[0]) if mask[y].any()]
    cols = [x for x in range(mask.shape[1]) if mask[:, x].any()]
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] if rows else None


def union_of_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixels inside any xyxy pixel-edge box."""
    inside = np.zeros(size, bool)
    for x1, y1, x2, y2 in np.asarray(boxes, int):
        inside[y1:y2, x1:x2] = True
    return inside


def shape_class(fill: float) -> int:
    """Reference: a whole shape's class from the share of its box it fills (ellipse pi/4, rectangle 1, triangle 1/2)."""
    if fill > 0.95:
        return 1
    return 0 if 0.65 < fill < 0.85 else 2 if 0.45 < fill < 0.6 else -1


# ---------------------------------------------------------------- digits


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


# ---------------------------------------------------------------- shapes


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


# ---------------------------------------------------------------- video


def read_frames(path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        ok, frame = cap.read()
        while ok:
            frames.append(frame)
            ok, frame = cap.read()
    finally:
        cap.release()
    return frames


def read_truth(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("seed", range(4))
def test_video_truth_labels_one_object_exactly_while_half_visible(tmp_path, seed):
    bg = noise(seed, (200, 320))
    truth_path = make_video(tmp_path / "one.mkv", n_frames=90, size=(200, 320), seed=seed, n_objects=1, background=bg)
    frames, truth = read_frames(tmp_path / "one.mkv"), read_truth(truth_path)
    assert len(frames) == len(truth) == 90 and [t["frame"] for t in truth] == list(range(90))
    drawn = [changed(f, bg) for f in frames]  # HuffYUV is lossless: exactly the object's visible pixels
    whole = [int(d.sum()) for d, b in zip(drawn, map(loop_bbox, drawn), strict=True) if b and b[0] > 0 and b[2] < 320]
    for d, t in zip(drawn, truth, strict=True):
        box = loop_bbox(d)
        if t["boxes"]:
            assert t["boxes"] == [box] and len(t["class_ids"]) == 1
        if whole:  # the object was fully in view at some frame: its full pixel count is known
            assert bool(t["boxes"]) == (int(d.sum()) >= 0.5 * whole[0])  # labeled while at least half in view


def test_video_objects_enter_and_leave_and_every_labeled_box_is_tight(tmp_path):
    bg = noise(7, (400, 320))
    truth_path = make_video(tmp_path / "many.mkv", n_frames=80, size=(400, 320), seed=3, n_objects=10, background=bg)
    frames, truth = read_frames(tmp_path / "many.mkv"), read_truth(truth_path)
    counts = [len(t["boxes"]) for t in truth]
    assert max(counts) >= 2 and len(set(counts)) >= 2  # the number of objects in view changes over time
    inside = total = 0
    for frame, t in zip(frames, truth, strict=True):
        drawn = changed(frame, bg)
        assert set(t["class_ids"]) <= set(range(len(CLASS_NAMES))) and len(t["class_ids"]) == len(t["boxes"])
        for x1, y1, x2, y2 in t["boxes"]:
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 400
            assert drawn[y1, x1:x2].any() and drawn[y2 - 1, x1:x2].any()
            assert drawn[y1:y2, x1].any() and drawn[y1:y2, x2 - 1].any()
        # Unlabeled drawn pixels belong to objects less than half in view (cut by the frame edge).
        inside += int((drawn & union_of_boxes(np.array(t["boxes"]).reshape(-1, 4), (400, 320))).sum())
        total += int(drawn.sum())
    assert inside >= 0.8 * total


def test_mp4_video_is_readable_and_deterministic(tmp_path):
    a = make_video(tmp_path / "a.mp4", n_frames=12, size=(240, 320), seed=5)
    b = make_video(tmp_path / "b.mp4", n_frames=12, size=(240, 320), seed=5)
    frames = read_frames(tmp_path / "a.mp4")
    assert len(frames) == 12 and frames[0].shape == (240, 320, 3)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "v.mov"}, "path must end in one of"),  # unsupported container
        ({"n_frames": 0}, "n_frames and fps must be >= 1"),  # no frames
        ({"size": (120, 640)}, "size must be at least"),  # too low for 199 px objects
        ({"background": np.zeros((480, 640), np.uint8)}, "background must be"),  # gray background
        ({"background": np.zeros((240, 320, 3), np.uint8)}, "background must be"),  # background of another size
    ],
)
def test_make_video_arguments_are_checked(tmp_path, kwargs, message):
    kwargs = {"path": "v.mp4", **kwargs}
    kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(ValueError, match=message):
        make_video(n_frames=kwargs.pop("n_frames", 2), **kwargs)


# ---------------------------------------------------------------- augmentation keeps boxes on their objects


def one_object(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A white shape on gray 114 (scale_crop's padding), as a BGR image, its box (1, 4) and class id (1,)."""
    bg = noise(seed)
    scene = draw_shapes(np.random.default_rng(seed), bg, max_objects=1)
    gray = np.where(changed(scene.image, bg), 255, 114).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR), scene.boxes, scene.class_ids


@pytest.mark.parametrize("seed", SEEDS)
def test_mirrored_box_covers_the_mirrored_object(seed):
    image, boxes, _ = one_object(seed)
    kept_image, kept_boxes = image.copy(), boxes.copy()
    out, moved = mirror(image, boxes)
    assert moved.tolist() == [loop_bbox(out[..., 0] == 255)]
    np.testing.assert_array_equal(image, kept_image)  # the caller's arrays are untouched
    np.testing.assert_array_equal(boxes, kept_boxes)


@pytest.mark.parametrize("seed", SEEDS)
def test_scaled_and_cropped_box_covers_the_moved_object(seed):
    image, boxes, class_ids = one_object(seed)
    out, moved, classes = scale_crop(image, boxes, class_ids, np.random.default_rng(seed))
    assert out.shape == image.shape and len(moved) == len(classes) <= 1
    if len(moved):
        assert classes.tolist() == class_ids.tolist()
        ref = np.array(loop_bbox(out[..., 0] != 114), np.float32)  # every pixel the warped object reaches
        h, w = image.shape[:2]
        x1, y1, x2, y2 = moved[0]
        # Bilinear sampling spreads an edge by up to the scale factor (<= 1.3 px).
        if x1 > 0 and y1 > 0 and x2 < w and y2 < h:  # inside the image: the box stays tight
            np.testing.assert_allclose(moved[0], ref, atol=1.5)
        else:  # cut by the border: the clipped box still covers the object (a cut triangle may be narrower)
            assert (moved[0, :2] <= ref[:2] + 1.5).all() and (moved[0, 2:] >= ref[2:] - 1.5).all()


# ---------------------------------------------------------------- faces


def test_face_crops_are_the_100_faces_of_lfw_subset():
    crops = face_crops()
    assert crops.shape == (100, 25, 25) and crops.dtype == np.uint8 and not crops.flags.writeable
    np.testing.assert_array_equal(crops, np.round(skimage.data.lfw_subset()[:100] * 255))


def test_identity_splits_are_fixed_disjoint_and_cover_every_face():
    s = identity_splits()
    ids = [set(s[k].ids.tolist()) for k in SPLIT_NAMES]
    assert [len(i) for i in ids] == [SPLITS[k] for k in SPLIT_NAMES] == [60, 20, 20]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # no identity in two splits
    assert set.union(*ids) == set(range(100))
    for k in SPLIT_NAMES:
        np.testing.assert_array_equal(s[k].faces, face_crops()[s[k].ids])
        np.testing.assert_array_equal(identity_splits()[k].ids, s[k].ids)


def test_face_views_are_bgr_frames_that_vary_and_repeat_per_seed():
    face = identity_splits()["train"].faces[0]
    views = face_views(face, 6, np.random.default_rng(0), size=48)
    assert views.shape == (6, 48, 48, 3) and views.dtype == np.uint8
    assert (views[..., 0] == views[..., 1]).all() and (views[..., 1] == views[..., 2]).all()  # gray as BGR
    assert len({v.tobytes() for v in views}) == 6  # every view differs
    np.testing.assert_array_equal(views, face_views(face, 6, np.random.default_rng(0), size=48))
    assert face_views(face, 0, np.random.default_rng(0)).shape == (0, 96, 96, 3)  # default size, no views


def test_face_views_resemble_their_own_face_most():
    faces, size = identity_splits()["test"].faces, 32

    def unit(a: np.ndarray) -> np.ndarray:  # rows centered and scaled to unit length: dot = correlation
        a = a.reshape(len(a), -1).astype(np.float64)
        a -= a.mean(axis=1, keepdims=True)
        return a / np.linalg.norm(a, axis=1, keepdims=True)

    ref = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in faces])
    refs = np.concatenate([unit(ref), unit(ref[:, :, ::-1])])  # each face and its mirror image
    rng, hits = np.random.default_rng(0), 0
    for i, face in enumerate(faces):
        best = (unit(face_views(face, 5, rng, size)[..., 0]) @ refs.T).argmax(axis=1) % len(faces)
        hits += int((best == i).sum())
    assert hits / (5 * len(faces)) >= 0.8  # chance is 1 / 20


def test_identity_batch_is_p_identities_times_k_views():
    faces = identity_splits()["train"].faces
    views, labels = identity_batch(np.random.default_rng(0), faces, p=4, k=3, size=32)
    assert views.shape == (12, 32, 32, 3) and labels.dtype == np.int64
    assert len(set(labels.tolist())) == 4 and (np.bincount(labels) <= 3).all()
    np.testing.assert_array_equal(labels, np.repeat(labels[::3], 3))  # k consecutive views per identity


@pytest.mark.parametrize("seed", SEEDS)
def test_pasted_face_boxes_equal_their_pixels(seed):
    bg = noise(seed, (160, 192))
    image, boxes = paste_faces(np.random.default_rng(seed), identity_splits()["dev"].faces, bg, max_faces=3)
    drawn = changed(image, bg)
    assert 1 <= len(boxes) <= 3 and boxes.dtype == np.float32
    assert not (drawn & ~union_of_boxes(boxes, bg.shape[:2])).any()  # every pasted pixel is in a box
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        assert x2 - x1 == y2 - y1 and MIN_FACE <= x2 - x1 <= 80  # squares from MIN_FACE to half the short side
        assert loop_bbox(drawn[y1:y2, x1:x2]) == [0, 0, x2 - x1, y2 - y1]  # the oval touches all four sides
        for u1, v1, u2, v2 in boxes[i + 1 :].astype(int):
            assert u2 <= x1 or x2 <= u1 or v2 <= y1 or y2 <= v1  # faces never overlap


def test_make_face_scene_is_deterministic():
    faces = identity_splits()["dev"].faces
    a, b = make_face_scene(np.random.default_rng(4), faces), make_face_scene(np.random.default_rng(4), faces)
    assert a[0].shape == (256, 256, 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: face_views(np.zeros((25, 25, 3), np.uint8), 1, np.random.default_rng(0)), "face must be"),  # color
        (lambda: face_views(np.zeros((25, 25)), 1, np.random.default_rng(0)), "face must be"),  # float crop
        (lambda: face_views(np.zeros((25, 25), np.uint8), 1, np.random.default_rng(0), size=4), "size >= 8"),
        (lambda: identity_batch(np.random.default_rng(0), face_crops()[:3], p=4, k=2), "p must be in \\[1, 3\\]"),
        (lambda: identity_batch(np.random.default_rng(0), face_crops()[:3], p=2, k=0), "k >= 1"),
        (lambda: paste_faces(np.random.default_rng(0), face_crops(), noise(0, (40, 200))), "sides >= 48"),
        (lambda: paste_faces(np.random.default_rng(0), face_crops()[:0], noise(0)), "len\\(faces\\) must be >= 1"),
    ],
)
def test_face_arguments_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_kiosk_face_views_are_tinted_oval_crops_and_deterministic():
    face = np.full((40, 40), 128, np.uint8)
    views = kiosk_face_views(face, 6, np.random.default_rng(0), size=32, p=1.0)
    assert views.shape == (6, 32, 32, 3) and views.dtype == np.uint8
    center = views[:, 12:20, 12:20].reshape(-1, 3).astype(float)  # inside the oval: the tinted face
    assert center[:, 0].mean() < center[:, 2].mean()  # skin tint: less blue than red (a gray face has B == R)
    again = kiosk_face_views(face, 6, np.random.default_rng(0), size=32, p=1.0)
    assert np.array_equal(views, again)
    plain = kiosk_face_views(face, 4, np.random.default_rng(1), size=32, p=0.0)
    assert (plain[..., 0] == plain[..., 2]).all()  # p = 0: plain gray face_views
    with pytest.raises(ValueError, match="p must be a probability"):
        kiosk_face_views(face, 1, np.random.default_rng(0), p=1.5)
