"""A generated detection data set: colored circles, squares and triangles on textured photos, COCO format.

Boxes are xyxy pixel edges, tight around each object's visible pixels: an object covering columns 3..7 has
x1 = 3, x2 = 8. Objects may overlap, but a new object is drawn only if every earlier one keeps at least
1 - MAX_OCCLUSION of its pixels visible, so no label is of a hidden or mostly hidden object. Each object also has
landmarks (export.data.keypoints), in the same coordinates, as COCO keypoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgepipe.export.data.backgrounds import random_background
from edgepipe.export.data.keypoints import (
    KEYPOINT_NAMES,
    NUM_KEYPOINTS,
    coco_keypoint_fields,
    mark_hidden,
    shape_keypoints,
)
from edgepipe.export.options import SPLITS
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.video import open_video_writer, video_codec

CLASS_NAMES = ("circle", "square", "triangle")  # circle: an ellipse when stretched; square: a rectangle
MAX_OCCLUSION = 0.3  # the most of an object's pixels that later objects may hide
ASPECT_RANGE = (0.5, 2.0)  # width / height of the shapes
PLACEMENT_TRIES = 20  # attempts to place one object before giving up on it
VIDEO_SIDES = (64.0, 240.0)  # video objects' side range in px (log-uniform): 16..60 px in a 160x160 input
VIDEO_GAP = 16  # px kept free between the lanes of video objects in view at the same time
VIDEO_MIN_VISIBLE = 0.5  # a video object is labeled while at least this fraction of its pixels is in view
CROSSING_SPEED = (4.0, 8.0)  # px per frame of the objects of a crossing video
CROSSING_SIDES = (64.0, 128.0)  # their side range in px: smaller than VIDEO_SIDES, so more lanes fit


@dataclass(frozen=True)
class Scene:
    """One generated image and its labels.

    image: (H, W, 3) BGR uint8. boxes: (N, 4) float32 xyxy pixel edges. class_ids: (N,) int64 into CLASS_NAMES.
    keypoints: (N, NUM_KEYPOINTS, 3) float32 x, y, v (export.data.keypoints), or None for scenes without landmarks.
    """

    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray
    keypoints: np.ndarray | None = None


@dataclass(frozen=True)
class DatasetConfig:
    """What a generated data set was made from; a stored one is reused only when this matches.

    image_size: (height, width). Objects per image: 1..max_objects, sides from min_size px to max_size px (0: half
    the image's short side). version: bumped whenever the drawing changes, so old data sets are regenerated.
    """

    n_train: int = 3000
    n_dev: int = 200
    n_test: int = 300
    image_size: tuple[int, int] = (160, 160)
    min_size: int = 12
    max_objects: int = 5
    seed: int = 0
    version: int = 3
    max_size: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_dev", "n_test"):
            if int(getattr(self, name)) < 0:
                raise UserError(f"{name} must be >= 0, but got {getattr(self, name)}")
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        check_scene_args(self.image_size, self.max_objects, self.min_size, self.max_size)


def check_scene_args(image_size: tuple[int, ...], max_objects: int, min_size: int, max_size: int = 0) -> None:
    """Raise unless image_size is (height, width), max_objects >= 1, 1 <= min_size <= half the short side, and
    max_size is 0 or in [min_size, half the short side]."""
    if len(image_size) != 2:
        raise UserError(f"image_size must be (height, width), but got {image_size!r}")
    if max_objects < 1:
        raise UserError(f"max_objects must be >= 1, but got {max_objects}")
    if not 1 <= min_size <= min(image_size) // 2:
        raise UserError(f"min_size must be in [1, {min(image_size) // 2}] (half the short side of {image_size}), "
                         f"but got {min_size}")
    if max_size and not min_size <= max_size <= min(image_size) // 2:
        raise UserError(f"max_size must be 0 (half the short side) or in [{min_size}, {min(image_size) // 2}] "
                         f"(min_size to half the short side of {image_size}), but got {max_size}")


def shape_mask(class_id: int, height: int, width: int) -> np.ndarray:
    """The filled shape inscribed in a height x width patch: ellipse (0), rectangle (1), upward triangle (2).

    Returns: (height, width) bool.
    """
    mask = np.zeros((height, width), np.uint8)
    if class_id == 0:
        # Sub-pixel center and axes (4 fractional bits), so even sizes are symmetric too.
        center = (round((width - 1) * 8), round((height - 1) * 8))
        axes = (round((width - 1) * 8), round((height - 1) * 8))
        cv2.ellipse(mask, center, axes, 0, 0, 360, 1, -1, cv2.LINE_8, 4)
    elif class_id == 1:
        mask[:] = 1
    else:
        pts = np.array([[(width - 1) // 2, 0], [0, height - 1], [width - 1, height - 1]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def render_scene(
    rng: np.random.Generator, image_size: tuple[int, int] = (256, 256), max_objects: int = 6, min_size: int = 12,
    max_size: int = 0,
) -> Scene:
    """One scene: shapes drawn by draw_shapes on a random_background of image_size (height, width)."""
    check_scene_args(image_size, max_objects, min_size, max_size)
    return draw_shapes(rng, random_background(rng, image_size), max_objects, min_size, max_size)


def draw_shapes(rng: np.random.Generator, background: np.ndarray, max_objects: int = 6, min_size: int = 12,
                max_size: int = 0) -> Scene:
    """Draw 1..max_objects shapes on a copy of background and label them.

    Each shape: a random class, a side from min_size px to max_size px (0: half the short image side; log-uniform),
    an aspect ratio in ASPECT_RANGE, a random position fully inside the image, a random color with smooth and fine
    texture. background: (H, W, 3) BGR uint8, not modified. Returns: Scene with tight boxes of the visible pixels
    and each shape's landmarks (hidden ones marked v = 1).
    """
    bg = np.asarray(background)
    if bg.ndim != 3 or bg.shape[2] != 3 or bg.dtype != np.uint8:
        raise UserError(f"background must be an (H, W, 3) uint8 image, but got shape {bg.shape} dtype {bg.dtype}")
    check_scene_args(bg.shape[:2], max_objects, min_size, max_size)
    image = bg.copy()
    owner = np.full(bg.shape[:2], -1, np.int32)  # (H, W): which object each pixel shows, -1 for the background
    full: list[int] = []  # pixel count of each drawn object
    classes: list[int] = []
    boxes: list[list[int]] = []  # where each object was drawn, xyxy: its visible pixels lie inside
    keypoints: list[np.ndarray] = []  # (NUM_KEYPOINTS, 3) per object
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(PLACEMENT_TRIES):
            c, x, y, mask = _random_shape(rng, bg.shape[:2], min_size, max_size or min(bg.shape[:2]) / 2)
            if _hides_too_much(owner, full, x, y, mask):
                continue
            _paint(rng, image, x, y, mask)
            owner[y : y + mask.shape[0], x : x + mask.shape[1]][mask] = len(classes)
            full.append(int(mask.sum()))
            classes.append(c)
            boxes.append([x, y, x + mask.shape[1], y + mask.shape[0]])
            keypoints.append(shape_keypoints(c, x, y, mask.shape[1], mask.shape[0]))
            break
    hidden = mark_hidden(np.array(keypoints, np.float32).reshape(-1, NUM_KEYPOINTS, 3), owner)
    return Scene(image, visible_boxes(owner, boxes), np.array(classes, np.int64), hidden)


def _random_shape(
    rng: np.random.Generator, image_size: tuple[int, int], min_size: int, max_size: float
) -> tuple[int, int, int, np.ndarray]:
    """A random class, top-left corner (x, y) and (h, w) bool mask that fits in image_size (height, width); its side
    log-uniform in [min_size, max_size]."""
    h_img, w_img = image_size
    side = float(np.exp(rng.uniform(np.log(min_size), np.log(max_size))))
    aspect = float(np.exp(rng.uniform(*np.log(ASPECT_RANGE))))
    w = min(w_img, max(min_size, round(side * np.sqrt(aspect))))
    h = min(h_img, max(min_size, round(side / np.sqrt(aspect))))
    x, y = int(rng.integers(0, w_img - w + 1)), int(rng.integers(0, h_img - h + 1))
    c = int(rng.integers(len(CLASS_NAMES)))
    return c, x, y, shape_mask(c, h, w)


def _hides_too_much(owner: np.ndarray, full: list[int], x: int, y: int, mask: np.ndarray) -> bool:
    """Would drawing mask at (x, y) leave an earlier object with less than 1 - MAX_OCCLUSION of its pixels?"""
    if not full:
        return False
    covered = owner[y : y + mask.shape[0], x : x + mask.shape[1]][mask]
    hidden = np.bincount(covered[covered >= 0], minlength=len(full))
    visible = np.bincount(owner[owner >= 0], minlength=len(full))
    return bool((visible - hidden < (1 - MAX_OCCLUSION) * np.asarray(full)).any())


def _paint(rng: np.random.Generator, image: np.ndarray, x: int, y: int, mask: np.ndarray) -> None:
    """Fill mask at (x, y) in image (H, W, 3) uint8, in place: a color plus smooth blotches and pixel noise."""
    h, w = mask.shape
    color = rng.uniform(20, 235, 3).astype(np.float32)
    blotches = rng.standard_normal((4, 4, 3), np.float32)
    smooth = cv2.resize(blotches, (w, h), interpolation=cv2.INTER_CUBIC) * np.float32(rng.uniform(0, 30))
    fine = rng.standard_normal((h, w, 1), np.float32) * np.float32(rng.uniform(2, 12))  # (h, w, 1): all channels
    patch = np.clip(color + smooth + fine, 0, 255).astype(np.uint8)  # (h, w, 3)
    image[y : y + h, x : x + w][mask] = patch[mask]


def visible_boxes(owner: np.ndarray, drawn: Sequence[Sequence[int]], ids: Sequence[int] | None = None) -> np.ndarray:
    """Tight xyxy pixel-edge boxes of objects' visible pixels.

    owner: (H, W) int, the object id shown at each pixel (-1 for none). drawn: per object id, the xyxy int box
    it was drawn in (its pixels lie inside; searching only there is fast). ids: the objects to box, all by default;
    each must show a pixel. Returns: (len(ids), 4) float32.
    """
    ids = range(len(drawn)) if ids is None else ids
    boxes = np.zeros((len(ids), 4), np.float32)
    for row, i in enumerate(ids):
        x1, y1, x2, y2 = drawn[i]
        ys, xs = np.nonzero(owner[y1:y2, x1:x2] == i)
        boxes[row] = (x1 + xs.min(), y1 + ys.min(), x1 + xs.max() + 1, y1 + ys.max() + 1)
    return boxes


def coco_dict(scenes: list[tuple[str, Scene]], image_size: tuple[int, int]) -> dict:
    """COCO detection annotations of (file name, scene) pairs; image ids and annotation ids from 1.

    bbox: [x, y, w, h] pixels, area: w * h, iscrowd 0, category_id: class id + 1 (COCO ids start at 1); with
    "keypoints" and "num_keypoints" when the scene has landmarks (categories then name their keypoints).
    image_size: (height, width) of every image.
    """
    images, annotations = [], []
    for image_id, (file_name, scene) in enumerate(scenes, start=1):
        images.append({"id": image_id, "file_name": file_name, "height": image_size[0], "width": image_size[1]})
        for k, ((x1, y1, x2, y2), c) in enumerate(zip(scene.boxes.tolist(), scene.class_ids.tolist(), strict=True)):
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": c + 1,
                                "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0})
            if scene.keypoints is not None:
                annotations[-1].update(coco_keypoint_fields(scene.keypoints[k]))
    categories = [{"id": i + 1, "name": n, "supercategory": "shape", "keypoints": list(KEYPOINT_NAMES[i]),
                   "skeleton": []} for i, n in enumerate(CLASS_NAMES)]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_detection_dataset(root: str | Path, config: DatasetConfig = DatasetConfig()) -> Path:
    """Write root/{train,dev,test}/NNNNN.png, root/{split}.json (COCO) and, last, root/config.json. Deterministic.

    Each split draws from its own generator, seeded [config.seed, split index]. Stale images of an earlier
    data set in the split folders are removed. Returns root.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").unlink(missing_ok=True)  # an interrupted run is never mistaken for a complete one
    for split in SPLITS:
        folder = root / split
        folder.mkdir(exist_ok=True)
        for stale in folder.glob("*.png"):
            stale.unlink()
        scenes = []
        for i, scene in enumerate(split_scenes(config, split)):
            name = f"{split}/{i:05d}.png"
            if not cv2.imwrite(str(root / name), scene.image):
                raise UserError(f"cannot write {root / name}: is the folder writable?")
            scenes.append((name, scene))
        (root / f"{split}.json").write_text(json.dumps(coco_dict(scenes, config.image_size)))
    (root / "config.json").write_text(json.dumps(asdict(config)))
    return root


def split_scenes(config: DatasetConfig, split: str) -> Iterator[Scene]:
    """The scenes of one split, in order, as make_detection_dataset writes them (generated in memory)."""
    if split not in SPLITS:
        raise UserError(f"split must be one of {SPLITS}, but got {split!r}")
    n = {"train": config.n_train, "dev": config.n_dev, "test": config.n_test}[split]
    rng = np.random.default_rng([config.seed, SPLITS.index(split)])
    for _ in range(n):
        yield render_scene(rng, config.image_size, config.max_objects, config.min_size, config.max_size)


def ensure_detection_dataset(root: str | Path, config: DatasetConfig = DatasetConfig()) -> Path:
    """Reuse the data set at root when it was made with the same config; (re)generate it otherwise. Returns root."""
    root = Path(root)
    stored = root / "config.json"
    if stored.is_file() and json.loads(stored.read_text()) == json.loads(json.dumps(asdict(config))):
        return root
    return make_detection_dataset(root, config)


def load_split(root: str | Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], dict]:
    """A split read back: images (H, W, 3) BGR uint8, boxes (N, 4) float32 xyxy pixels, class ids (N,) int64
    (0-based, into CLASS_NAMES), and the COCO dict, in the order of the COCO images."""
    root = Path(root)
    path = root / f"{split}.json"
    if not path.is_file():
        raise UserError(f"no split {split!r} at {path}: make it with ensure_detection_dataset")
    coco = json.loads(path.read_text())
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    images, boxes, classes = [], [], []
    for img in coco["images"]:
        frame = cv2.imread(str(root / img["file_name"]), cv2.IMREAD_COLOR)
        if frame is None:
            raise UserError(f"cannot read {root / img['file_name']}: regenerate the data set (delete {root})")
        anns = by_image[img["id"]]
        xywh = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
        images.append(frame)
        boxes.append(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))
        classes.append(np.array([a["category_id"] - 1 for a in anns], np.int64))
    return images, boxes, classes, coco


def make_video(
    path: str | Path,
    n_frames: int = 150,
    size: tuple[int, int] = (480, 640),
    fps: int = 30,
    seed: int = 0,
    n_objects: int = 6,
    background: np.ndarray | None = None,
    crossing: bool = False,
) -> Path:
    """Write a test video of shapes crossing a still background, and its ground truth beside it.

    path: a suffix of runtime.video.VIDEO_CODECS (.mkv: lossless). size: (height, width). background: (H, W, 3) BGR
    uint8 of that size, or None for a random_background. Up to n_objects shapes (sides in VIDEO_SIDES px, aspect
    ratios as in training, each in a lane of its own so they never hide each other: a shape that finds no free
    lane is left out), each crossing left to right or right to left at 2..6 px per frame, entering at its own
    time (some before the first frame, some never inside the clip). crossing: every object instead enters inside
    the clip and crosses the whole frame before its end (when the clip is long enough), the classes and the two
    directions taken in turn (6 objects: each class each way), at CROSSING_SPEED px per frame; an object that finds
    no free lane waits for one. The ground truth goes to
    path.with_suffix(".jsonl"), one line per frame: {"frame": i, "boxes": [[x1, y1, x2, y2], ...], "class_ids":
    [...], "ids": [...]}: xyxy pixel edges of the objects with at least VIDEO_MIN_VISIBLE of their pixels in view,
    their classes, and each object's own number (the same in every frame: the truth for tracking). Deterministic per
    seed. Returns the ground-truth path.
    """
    path = Path(path)
    video_codec(path)  # a bad suffix is refused before any work
    if n_frames < 1 or fps < 1 or n_objects < 0:
        raise UserError(f"n_frames and fps must be >= 1 and n_objects >= 0, but got {n_frames}, {fps}, {n_objects}")
    h_img, w_img = (int(v) for v in size)
    if h_img < 200 or w_img < 200:
        raise UserError(f"size must be at least (200, 200) to hold the objects, but got {size!r}")
    rng = np.random.default_rng(seed)
    still = random_background(rng, (h_img, w_img)) if background is None else np.asarray(background)
    if still.shape != (h_img, w_img, 3) or still.dtype != np.uint8:
        raise UserError(f"background must be ({h_img}, {w_img}, 3) uint8, but got {still.shape} {still.dtype}")
    objects: list[dict] = []
    for k in range(n_objects):
        if crossing:
            _place_crossing(rng, objects, _crossing_object(rng, k, n_frames, h_img, w_img), n_frames, w_img, h_img)
        else:
            _place(rng, objects, _video_object(rng, n_frames, h_img), w_img, h_img)
    writer = open_video_writer(path, fps, (h_img, w_img))
    truth_path = path.with_suffix(".jsonl")
    try:
        with truth_path.open("w") as truth:
            for i in range(n_frames):
                frame, boxes, classes, ids = _video_frame(still, objects, i)
                writer.write(frame)
                truth.write(json.dumps({"frame": i, "boxes": boxes, "class_ids": classes, "ids": ids}) + "\n")
    finally:
        writer.release()
    return truth_path


def _video_object(rng: np.random.Generator, n_frames: int, h_img: int, c: int | None = None,
                  sides: tuple[float, float] = VIDEO_SIDES) -> dict:
    """One moving shape: class c, mask (h, w) bool, row y, entry frame start, signed speed (px/frame), patch
    (h, w, 3) uint8 BGR texture.

    Its side is log-uniform in sides px (width and height at least the smallest) and its aspect ratio in
    ASPECT_RANGE, like the training shapes; its class is c, or drawn when None."""
    side = float(np.exp(rng.uniform(*np.log(sides))))
    aspect = float(np.exp(rng.uniform(*np.log(ASPECT_RANGE))))
    w = max(round(sides[0]), round(side * np.sqrt(aspect)))
    h = min(h_img, max(round(sides[0]), round(side / np.sqrt(aspect))))
    c = int(rng.integers(len(CLASS_NAMES))) if c is None else c
    mask = shape_mask(c, h, w)
    patch = np.zeros((h, w, 3), np.uint8)
    _paint(rng, patch, 0, 0, mask)  # textured like the training shapes
    return {"c": c, "mask": mask, "y": 0, "start": int(rng.integers(-n_frames // 2, n_frames // 2)),
            "speed": float(rng.uniform(2, 6)) * (1 if rng.random() < 0.5 else -1), "patch": patch}


def _crossing_object(rng: np.random.Generator, k: int, n_frames: int, h_img: int, w_img: int) -> dict:
    """The k-th object of a crossing video: class k mod 3, left to right for k mod 6 < 3, else right to left, at
    CROSSING_SPEED px per frame, entering early enough to leave before the clip ends (when the clip allows)."""
    o = _video_object(rng, n_frames, h_img, c=k % len(CLASS_NAMES), sides=CROSSING_SIDES)
    direction = 1 if k % (2 * len(CLASS_NAMES)) < len(CLASS_NAMES) else -1
    speed = float(rng.uniform(*CROSSING_SPEED))
    crossing = int(np.ceil((w_img + o["mask"].shape[1]) / speed))  # frames from entering to leaving
    return {**o, "speed": speed * direction, "start": int(rng.integers(0, max(1, n_frames - crossing)))}


def _place_crossing(rng: np.random.Generator, objects: list[dict], new: dict, n_frames: int, w_img: int,
                    h_img: int) -> None:
    """_place new, entering later by its own crossing time's tenth each time no lane is free, as long as it still
    leaves before the clip's end; left out when it cannot."""
    crossing = int(np.ceil((w_img + new["mask"].shape[1]) / abs(new["speed"])))
    placed = len(objects)
    while not (len(objects) > placed or new["start"] + crossing > max(n_frames, crossing)):
        _place(rng, objects, new, w_img, h_img)
        new = {**new, "start": new["start"] + max(1, crossing // 10)}


def _place(rng: np.random.Generator, objects: list[dict], new: dict, w_img: int, h_img: int) -> None:
    """Give new a row y in a lane of its own: no object in view at the same time comes within VIDEO_GAP px of it
    vertically (shapes never hide each other). Appends it to objects, or leaves it out after PLACEMENT_TRIES."""
    h = new["mask"].shape[0]

    def frames_in_view(o: dict) -> tuple[float, float]:
        return o["start"], o["start"] + (w_img + o["mask"].shape[1]) / abs(o["speed"])

    first, last = frames_in_view(new)
    for _attempt in range(PLACEMENT_TRIES):
        y = int(rng.integers(0, h_img - h + 1))
        if all(y + h + VIDEO_GAP <= o["y"] or o["y"] + o["mask"].shape[0] + VIDEO_GAP <= y
               for o in objects if frames_in_view(o)[0] < last and first < frames_in_view(o)[1]):
            objects.append({**new, "y": y})
            return


def _video_frame(still: np.ndarray, objects: list[dict], i: int) -> tuple[np.ndarray, list, list, list]:
    """Frame i: objects drawn in order over still (H, W, 3) uint8. Returns the frame, and the boxes, class ids and
    object ids (the object's index, the same in every frame) of the labeled objects (lists)."""
    frame = still.copy()
    h_img, w_img = still.shape[:2]
    owner = np.full((h_img, w_img), -1, np.int32)  # (H, W): which object each pixel shows
    drawn = []  # xyxy of each object's part in view (empty when out of view)
    for k, o in enumerate(objects):
        h, w = o["mask"].shape
        travelled = (i - o["start"]) * abs(o["speed"])
        x = int(-w + travelled) if o["speed"] > 0 else int(w_img - travelled)
        x0, x1 = max(0, x), min(w_img, x + w)
        drawn.append([x0, o["y"], max(x0, x1), o["y"] + h])
        if x0 < x1:
            mask = o["mask"][:, x0 - x : x1 - x]  # (h, x1 - x0): the part in view
            frame[o["y"] : o["y"] + h, x0:x1][mask] = o["patch"][:, x0 - x : x1 - x][mask]
            owner[o["y"] : o["y"] + h, x0:x1][mask] = k
    shown = np.bincount(owner[owner >= 0], minlength=len(objects))
    labeled = [k for k, o in enumerate(objects) if shown[k] >= VIDEO_MIN_VISIBLE * o["mask"].sum()]
    boxes = visible_boxes(owner, drawn, labeled).astype(int).tolist()
    return frame, boxes, [objects[k]["c"] for k in labeled], labeled
