"""A generated detection data set: colored circles, squares and triangles on textured photos, COCO format."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from export.data.backgrounds import random_background

CLASS_NAMES = ("circle", "square", "triangle")
MAX_OVERLAP = 0.3  # a new object may cover at most this fraction of an earlier object's visible pixels


@dataclass(frozen=True)
class Scene:
    """image: (H, W, 3) BGR uint8. boxes: (N, 4) float32 xyxy pixels (tight around each object's pixels).
    class_ids: (N,) int64 indices into CLASS_NAMES."""

    image: np.ndarray
    boxes: np.ndarray
    class_ids: np.ndarray


@dataclass(frozen=True)
class DatasetConfig:
    """What a generated data set was made from; a stored one is reused only when this matches."""

    n_train: int = 2500
    n_dev: int = 200
    n_test: int = 300
    image_size: tuple[int, int] = (160, 160)
    min_size: int = 12
    max_objects: int = 5
    seed: int = 0
    version: int = 1


def shape_mask(class_id: int, size: tuple[int, int], w: int, h: int, x: int, y: int) -> np.ndarray:
    """A filled circle/ellipse (0), rectangle (1) or upward triangle (2) in the box (x, y, w, h). (H, W) bool."""
    mask = np.zeros(size, np.uint8)
    if class_id == 0:
        cv2.ellipse(mask, (x + w // 2, y + h // 2), (max(1, w // 2), max(1, h // 2)), 0, 0, 360, 1, -1)
    elif class_id == 1:
        cv2.rectangle(mask, (x, y), (x + w - 1, y + h - 1), 1, -1)
    else:
        pts = np.array([[x + w // 2, y], [x, y + h - 1], [x + w - 1, y + h - 1]], np.int32)
        cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def render_scene(
    rng: np.random.Generator, image_size: tuple[int, int] = (256, 256), max_objects: int = 6, min_size: int = 12
) -> Scene:
    """One scene: 1..max_objects objects of varied scale (min_size px to half the image) and aspect ratio
    (1:2 to 2:1), limited overlap, textured fill, on a random background. Labels are each object's tight box."""
    h_img, w_img = image_size
    image = random_background(rng, image_size).astype(np.float32)
    owner = np.full(image_size, -1, np.int32)  # which object owns each pixel
    classes: list[int] = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        for _attempt in range(20):
            side = float(np.exp(rng.uniform(np.log(min_size), np.log(min(image_size) / 2))))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            w, h = max(min_size, round(side * np.sqrt(aspect))), max(min_size, round(side / np.sqrt(aspect)))
            w, h = min(w, w_img), min(h, h_img)
            x, y = int(rng.integers(0, w_img - w + 1)), int(rng.integers(0, h_img - h + 1))
            c = int(rng.integers(len(CLASS_NAMES)))
            mask = shape_mask(c, image_size, w, h, x, y)
            if _covers_too_much(owner, mask, len(classes)):
                continue
            color = rng.uniform(20, 235, 3)
            texture = rng.normal(0, rng.uniform(3, 25), (h_img, w_img, 1))
            image[mask] = np.clip(color + texture[mask], 0, 255)
            owner[mask] = len(classes)
            classes.append(c)
            break
    boxes, kept = [], []
    for i, c in enumerate(classes):
        ys, xs = np.nonzero(owner == i)
        if len(xs):
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            kept.append(c)
    blurred = cv2.GaussianBlur(image, (3, 3), 0) if rng.random() < 0.3 else image
    return Scene(blurred.astype(np.uint8), np.array(boxes, np.float32).reshape(-1, 4), np.array(kept, np.int64))


def _covers_too_much(owner: np.ndarray, mask: np.ndarray, n: int) -> bool:
    """Would drawing mask hide more than MAX_OVERLAP of any earlier object's visible pixels?"""
    if n == 0:
        return False
    visible = np.bincount(owner[owner >= 0], minlength=n)
    hidden = np.bincount(owner[mask & (owner >= 0)], minlength=n)
    return bool((hidden > MAX_OVERLAP * np.maximum(visible, 1)).any())


def coco_dict(scenes: list[tuple[str, Scene]], image_size: tuple[int, int]) -> dict:
    """COCO detection annotations: bbox [x, y, w, h] pixels, category ids from 1."""
    images, annotations = [], []
    for image_id, (file_name, scene) in enumerate(scenes, start=1):
        images.append({"id": image_id, "file_name": file_name, "height": image_size[0], "width": image_size[1]})
        for (x1, y1, x2, y2), c in zip(scene.boxes.tolist(), scene.class_ids.tolist(), strict=True):
            w, h = x2 - x1, y2 - y1
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": c + 1,
                                "bbox": [x1, y1, w, h], "area": w * h, "iscrowd": 0})
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(CLASS_NAMES)]
    return {"images": images, "annotations": annotations, "categories": categories}


def make_detection_dataset(root: str | Path, config: DatasetConfig = DatasetConfig()) -> Path:
    """Write root/{train,dev,test}/*.png and root/{split}.json (COCO) and root/config.json. Deterministic."""
    root = Path(root)
    sizes = {"train": config.n_train, "dev": config.n_dev, "test": config.n_test}
    for offset, (split, n) in enumerate(sizes.items()):
        rng = np.random.default_rng([config.seed, offset])  # one stream per split: splits are independent
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        scenes = []
        for i in range(n):
            scene = render_scene(rng, config.image_size, config.max_objects, config.min_size)
            name = f"{split}/{i:05d}.png"
            cv2.imwrite(str(root / name), scene.image)
            scenes.append((name, scene))
        (root / f"{split}.json").write_text(json.dumps(coco_dict(scenes, config.image_size)))
    (root / "config.json").write_text(json.dumps(asdict(config)))
    return root


def ensure_detection_dataset(root: str | Path, config: DatasetConfig = DatasetConfig()) -> Path:
    """Reuse the data set at root when it was made with the same config; (re)generate it otherwise."""
    root = Path(root)
    stored = root / "config.json"
    if stored.is_file() and json.loads(stored.read_text()) == json.loads(json.dumps(asdict(config))):
        return root
    return make_detection_dataset(root, config)


def load_split(root: str | Path, split: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], dict]:
    """A split read back: images (BGR uint8), boxes (N, 4) xyxy float32, class ids (N,) int64, and the COCO dict."""
    root = Path(root)
    coco = json.loads((root / f"{split}.json").read_text())
    by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        by_image[ann["image_id"]].append(ann)
    images, boxes, classes = [], [], []
    for img in coco["images"]:
        frame = cv2.imread(str(root / img["file_name"]), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"cannot read {root / img['file_name']}: regenerate the data set (delete {root})")
        anns = by_image[img["id"]]
        images.append(frame)
        boxes.append(np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                               for a in anns], np.float32).reshape(-1, 4))
        classes.append(np.array([a["category_id"] - 1 for a in anns], np.int64))
    return images, boxes, classes, coco


def make_video(
    path: str | Path, n_frames: int = 150, size: tuple[int, int] = (480, 640), fps: int = 30, seed: int = 0,
    n_objects: int = 6,
) -> Path:
    """Write a test video of shapes crossing a textured background, and its ground truth beside it.

    path: the .mp4/.avi to write (OpenCV's mp4v / MJPG). The ground truth goes to path.with_suffix(".jsonl"),
    one line per frame: {"frame": i, "boxes": [[x1, y1, x2, y2], ...], "class_ids": [...]} (objects at least
    half visible). Objects 40 to 200 px enter and leave the frame at different times and speeds.
    Returns the ground-truth path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h_img, w_img = size
    background = random_background(rng, size)
    objects = []
    for _ in range(n_objects):
        w, h = (int(v) for v in rng.integers(40, 200, 2))
        start = int(rng.integers(-n_frames // 2, n_frames // 2))
        speed = float(rng.uniform(2, 6)) * (1 if rng.random() < 0.5 else -1)
        y = int(rng.integers(0, h_img - h))
        objects.append({"c": int(rng.integers(len(CLASS_NAMES))), "w": w, "h": h, "y": y, "start": start,
                        "speed": speed, "color": rng.uniform(30, 230, 3)})
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (w_img, h_img))
    if not writer.isOpened():
        raise ValueError(f"cannot write video {path}: use a .mp4 or .avi path in a writable folder")
    truth_path = path.with_suffix(".jsonl")
    try:
        with truth_path.open("w") as truth:
            for i in range(n_frames):
                frame, boxes, classes = _video_frame(background, objects, i, w_img)
                writer.write(frame)
                truth.write(json.dumps({"frame": i, "boxes": boxes, "class_ids": classes}) + "\n")
    finally:
        writer.release()
    return truth_path


def _video_frame(background: np.ndarray, objects: list[dict], i: int, w_img: int) -> tuple[np.ndarray, list, list]:
    """Frame i: each object moves horizontally from its side of the frame. Returns frame, boxes, class ids."""
    frame = background.copy()
    size = frame.shape[:2]
    owner = np.full(size, -1, np.int32)
    full_area = []
    for k, o in enumerate(objects):
        travelled = (i - o["start"]) * abs(o["speed"])
        x = int(-o["w"] + travelled) if o["speed"] > 0 else int(w_img - travelled)
        full_area.append(o["w"] * o["h"])
        if x + o["w"] <= 0 or x >= w_img:
            continue
        x0, x1 = max(0, x), min(w_img, x + o["w"])
        mask = np.zeros(size, bool)
        mask[:, x0:x1] = shape_mask(o["c"], (size[0], o["w"]), o["w"], o["h"], 0, o["y"])[:, x0 - x : x1 - x]
        frame[mask] = o["color"].astype(np.uint8)
        owner[mask] = k
    boxes, classes = [], []
    for k, o in enumerate(objects):
        ys, xs = np.nonzero(owner == k)
        full = np.count_nonzero(shape_mask(o["c"], (o["h"], o["w"]), o["w"], o["h"], 0, 0))
        if len(xs) >= 0.5 * full:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
            classes.append(o["c"])
    return frame, boxes, classes
