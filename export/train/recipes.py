"""Training recipes: which data, model, loss and dev metric each `edgepipe train NAME` uses."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from edgepipe.export.data.detection import (
    CLASS_NAMES,
    DatasetConfig,
    Scene,
    coco_dict,
    ensure_detection_dataset,
    load_split,
)
from edgepipe.export.data.digits import CLASS_NAMES as DIGITS
from edgepipe.export.data.digits import load_digits_splits
from edgepipe.export.data.faces import identity_splits, kiosk_face_views, make_face_scene
from edgepipe.export.data.keypoints import CLASS_KEYPOINTS, KEYPOINT_SIGMA, NUM_KEYPOINTS, keypoints_of
from edgepipe.export.data.windows import WINDOW_NAMES, window_detection_split, window_meta, window_split
from edgepipe.export.metrics import classification_metrics, detection_metrics, embedding_metrics, keypoint_metrics
from edgepipe.export.models.windows import ConvWindows
from edgepipe.export.options import DATA_DIR, RECIPE_EPOCHS, RECIPES
from edgepipe.export.predict import TorchPredictor, classify, detect, embed, meta_from_flat
from edgepipe.export.train.datasets import (
    Detection,
    ImageClassification,
    PoseDetection,
    Vectors,
    detection_collate,
    pose_collate,
)
from edgepipe.export.train.loop import Recipe
from edgepipe.export.train.losses import (
    batch_triplet_loss,
    build_keypoint_targets,
    build_yolo_targets,
    keypoint_loss,
    yolo_loss,
)
from edgepipe.export.train.siamese import siamese_recipe
from edgepipe.postprocess.anchors import kmeans_anchors
from edgepipe.postprocess.boxes import boxes_to_input
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.preprocessing import preprocess

DIGITS_BASELINE = (0.005, "human-level error on 8x8 digits, about 0.5%")
LAMBDA_KEYPOINTS = 5.0  # the landmarks' squared error weighs as the box's (lambda_coord)


def make_recipe(name: str, data_dir: str | Path = DATA_DIR, tiny: bool = False, workers: int = 0,
                encoder: Path | None = None) -> Recipe:
    """The recipe for a name in RECIPES. tiny: a seconds-long configuration (tests, smoke runs). encoder: the face
    encoder of the siamese recipe."""
    if name not in RECIPES:
        raise UserError(f"recipe must be one of {RECIPES}, but got {name!r}")
    if name == "siamese":
        recipe = siamese_recipe(encoder, tiny)
    elif name == "lenet5":
        recipe = lenet5_recipe(tiny)
    elif name in ("softmax", "shallow", "deep", "logistic"):
        recipe = dense_recipe(name, tiny)
    elif name == "facenet":
        recipe = facenet_recipe(tiny)
    elif name == "window":
        recipe = window_recipe(tiny)
    else:
        recipe = detector_recipe(name, Path(data_dir), tiny, workers)
    recipe.tiny = tiny
    return recipe


def set_keep_prob(recipe: Recipe, keep_prob: float) -> None:
    """Inverted dropout on the recipe model's hidden layers: each unit kept with probability keep_prob, the kept ones
    scaled by 1 / keep_prob (the course's d = rand < keep_prob; a *= d; a /= keep_prob), off at evaluation. The
    model is built with dropout p = 1 - keep_prob; UserError when it takes no dropout."""
    from edgepipe.export.models import REGISTRY

    takes = [n for n, e in REGISTRY.items() if "dropout" in inspect.signature(e.builder).parameters]
    if recipe.model_name not in takes:
        raise UserError(f"--dropout: recipe {recipe.name}'s model ({recipe.model_name}) has no hidden layer to drop "
                         f"units from; the models with dropout are {', '.join(takes)}")
    recipe.build_kwargs = {**recipe.build_kwargs, "dropout": 1.0 - keep_prob}


def lenet5_recipe(tiny: bool) -> Recipe:
    splits = load_digits_splits()
    meta = {"task": "classify", "imgsz": [32, 32], "names": list(DIGITS), "channel_order": "GRAY", "resize": "resize",
            "mean": [0.0], "std": [1.0], "model_name": "lenet5"}
    spec = meta_from_flat(meta).preprocess
    n = 64 if tiny else len(splits["train"].y)
    train = ImageClassification(splits["train"].images[:n], splits["train"].y[:n], spec, augment=not tiny)

    def evaluate(model) -> dict[str, float]:
        pred = TorchPredictor(model, meta_from_flat(meta))
        out = {}
        for split in ("train", "dev"):
            s = splits[split]
            m = min(len(s.y), 64 if tiny else len(s.y))
            metrics = classification_metrics(s.y[:m], classify(pred, s.images[:m]), DIGITS)
            out[f"{split}_error"] = 1 - metrics["accuracy"]
        out["accuracy"] = 1 - out["dev_error"]
        return out

    return Recipe("lenet5", "lenet5", {"num_classes": 10, "activation": "relu"}, meta,
                  lambda: DataLoader(train, batch_size=64, shuffle=True), _cross_entropy, evaluate, "accuracy",
                  *DIGITS_BASELINE, epochs=1 if tiny else RECIPE_EPOCHS["lenet5"], learning_rate=2e-3,
                  weight_decay=1e-4)


def _cross_entropy(model, batch):
    x, y = batch
    loss = F.cross_entropy(model(x), y)
    return loss, {"ce": loss.item()}


def dense_recipe(name: str, tiny: bool) -> Recipe:
    splits = load_digits_splits()
    binary = name == "logistic"  # logistic regression: digit 0 against the rest
    label = (lambda y: (y == 0).astype(np.int64)) if binary else (lambda y: y)
    names = ["other", "0"] if binary else list(DIGITS)
    n = 64 if tiny else len(splits["train"].y)
    train = Vectors(splits["train"].x[:n], label(splits["train"].y[:n]))
    kwargs = {"n_x": 64} if binary else {"n_x": 64, "num_classes": 10}
    meta = {"task": "classify", "imgsz": [8, 8], "names": names, "channel_order": "GRAY", "resize": "resize",
            "mean": [0.0], "std": [1.0], "model_name": name}

    def loss(model, batch):
        x, y = batch
        out = model(x)
        value = F.binary_cross_entropy(out[:, 0], y.to(out.dtype)) if binary else F.cross_entropy(out, y)
        return value, {"loss": value.item()}

    def evaluate(model) -> dict[str, float]:
        out = {}
        for split in ("train", "dev"):
            s = splits[split]
            with torch.no_grad():
                p = model(torch.from_numpy(s.x))
            pred = (p[:, 0] > 0.5).long().numpy() if binary else p.argmax(1).numpy()
            out[f"{split}_error"] = float(np.mean(pred != label(s.y)))
        out["accuracy"] = 1 - out["dev_error"]
        return out

    return Recipe(name, name, kwargs, meta, lambda: DataLoader(train, batch_size=64, shuffle=True), loss, evaluate,
                  "accuracy", *DIGITS_BASELINE, epochs=1 if tiny else RECIPE_EPOCHS[name], learning_rate=3e-3)


def window_recipe(tiny: bool) -> Recipe:
    """The lecture's window classifier on 14x14 windows cut from scenes of small shapes (export.data.windows).
    Train and dev errors: window classification; map50: its convolutional form's mAP@0.5 on the dev scenes."""
    meta = window_meta()
    spec = meta_from_flat(meta).preprocess
    x, y = window_split("train", tiny)
    train = TensorDataset(torch.from_numpy(preprocess(list(x), spec).batch), torch.from_numpy(y))
    fixed = {"train": (x[:2000], y[:2000]), "dev": window_split("dev", tiny)}
    dev_images, dev_coco = window_detection_split("dev", tiny)

    def evaluate(model) -> dict[str, float]:
        pred = TorchPredictor(model, meta_from_flat(meta))
        out = {f"{split}_error": 1 - classification_metrics(labels, classify(pred, list(frames)), WINDOW_NAMES)[
            "accuracy"] for split, (frames, labels) in fixed.items()}
        conv = TorchPredictor(ConvWindows.from_classifier(model), meta_from_flat(window_meta(convolutional=True)))
        dev = detection_metrics(dev_coco, detect(conv, dev_images))
        return {**out, "accuracy": 1 - out["dev_error"], "map50": dev["map50"], "dev_recall": dev["recall"],
                "dev_precision": dev["precision"]}

    return Recipe("window", "window", {"num_classes": len(WINDOW_NAMES)}, meta,
                  lambda: DataLoader(train, batch_size=128, shuffle=True), _cross_entropy, evaluate, "accuracy",
                  0.01, "a person labels these windows almost always right",
                  epochs=1 if tiny else RECIPE_EPOCHS["window"], learning_rate=1e-3, weight_decay=1e-4, eval_every=5)


def detector_recipe(name: str, data_dir: Path, tiny: bool, workers: int) -> Recipe:
    """yolo-small on the generated shapes, yolo-pose on the same shapes with their landmarks (the course's 2 outputs
    per landmark, squared error for the responsible anchor, weighted LAMBDA_KEYPOINTS), or yolo-face (the same
    model, one class) on composited faces."""
    size = (160, 160)
    pose = name == "yolo-pose"
    if name in ("yolo-small", "yolo-pose"):
        config = DatasetConfig(n_train=48, n_dev=16, n_test=16) if tiny else DatasetConfig()
        root = ensure_detection_dataset(data_dir / ("shapes-tiny" if tiny else "shapes"), config)
        train_data, dev_data = load_split(root, "train"), load_split(root, "dev")
        names = list(CLASS_NAMES)
    else:
        train_data = face_detection_split("train", 48 if tiny else 1500)
        dev_data = face_detection_split("dev", 16 if tiny else 200)
        names = ["face"]
    meta = {"task": "detect", "imgsz": list(size), "names": names, "head": "yolo-course", "resize": "letterbox",
            "pad_value": 114, "channel_order": "RGB", "mean": [0.0], "std": [1.0], "model_name": name}
    if pose:
        meta.update(head="yolo-course-pose", kpt_shape=[NUM_KEYPOINTS, 2], class_keypoints=list(CLASS_KEYPOINTS))
    spec = meta_from_flat({**meta, "anchors": [[1.0, 1.0]]}).preprocess
    grid = (size[0] // 16, size[1] // 16)
    wh = np.concatenate([boxes_to_input(b, preprocess(img, spec).transforms[0]) for img, b in
                         zip(train_data[0][:500], train_data[1][:500], strict=True)])
    wh = (wh[:, 2:] - wh[:, :2]) / 16.0  # grid cells
    anchors = kmeans_anchors(wh, 3, seed=0).anchors.round(3).tolist()
    meta["anchors"] = anchors
    if pose:
        train = PoseDetection(*train_data[:3], keypoints_of(train_data[3]), spec, augment=not tiny)
    else:
        train = Detection(train_data[0], train_data[1], train_data[2], spec, augment=not tiny)
    anchor_arr = np.array(anchors)

    def loss(model, batch):
        x, boxes, classes = batch[:3]
        targets = build_yolo_targets(boxes, classes, anchor_arr, grid, size)
        pred = model(x)
        if not pose:
            return yolo_loss(pred, targets, len(anchors))
        total, parts = yolo_loss(pred, targets, len(anchors), extra=2 * NUM_KEYPOINTS)
        points = keypoint_loss(pred, build_keypoint_targets(boxes, batch[3], anchor_arr, grid, size), len(anchors))
        return total + LAMBDA_KEYPOINTS * points, {**parts, "keypoints": points.item()}

    def evaluate(model) -> dict[str, float]:
        pred = TorchPredictor(model, meta_from_flat(meta))
        k = len(dev_data[0])
        found = detect(pred, dev_data[0])
        dev = detection_metrics(dev_data[3], found)
        train_coco = _subset_coco(train_data[3], min(k, 100))
        train_m = detection_metrics(train_coco, detect(pred, train_data[0][: min(k, 100)]))
        points = keypoint_metrics(dev_data[3], found, KEYPOINT_SIGMA) if pose else {}
        return {"map50": dev["map50"], "map": dev["map"], "dev_recall": dev["recall"],
                "dev_precision": dev["precision"], "train_error": 1 - train_m["map50"], "dev_error": 1 - dev["map50"],
                **{key: v for key, v in points.items() if key != "keypoints_compared"}}

    collate = pose_collate if pose else detection_collate
    loader = DataLoader(train, batch_size=16, shuffle=True, collate_fn=collate, num_workers=workers,
                        persistent_workers=workers > 0)
    kwargs = {"num_classes": len(names), "anchors": anchors, "input_size": list(size)}
    return Recipe(name, "yolo-pose" if pose else "yolo-small", kwargs, meta, lambda: loader, loss, evaluate, "map50",
                  0.01, "a person finds about 99% of these objects", epochs=1 if tiny else RECIPE_EPOCHS[name],
                  learning_rate=3e-3, weight_decay=5e-4, eval_every=10)


def _subset_coco(coco: dict, k: int) -> dict:
    images = coco["images"][:k]
    ids = {img["id"] for img in images}
    return {**coco, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in ids]}


KIOSK_FRAME = (480, 640)  # (height, width) of a kiosk camera frame
KIOSK_FACE_PX = (40, 240)  # face sides in a kiosk-like training scene (log-uniform): far away to close up
SQUARE_SHARE = 0.3  # share of the 256x256 scenes the detector was first trained on, so it still finds those


def face_detection_split(split: str, n: int, seed: int = 0) -> tuple[list, list, list, dict]:
    """In-memory face scenes from one identity split: (images, boxes, class ids, COCO dict) like load_split.

    Scene i is a 256x256 make_face_scene for SQUARE_SHARE of the indices (3 in every 10), else a kiosk-like frame:
    KIOSK_FRAME with 1..3 faces of KIOSK_FACE_PX sides (at the 160x160 input, the kiosk's faces of 120..200 px
    are 30..50 px). The square scenes draw from the generator the split has always used ([seed, split index]),
    so they are the first scenes of the earlier all-square split; the kiosk frames draw from [seed, split index, 1].
    Images: (H, W, 3) BGR uint8 of either size; boxes: (N, 4) float32 xyxy pixels.
    """
    index = list(identity_splits()).index(split)
    square_rng, kiosk_rng = np.random.default_rng([seed, index]), np.random.default_rng([seed, index, 1])
    faces = identity_splits()[split].faces
    images, boxes = [], []
    for i in range(n):
        if _is_square_scene(i):
            img, b = make_face_scene(square_rng, faces)
        else:
            img, b = make_face_scene(kiosk_rng, faces, KIOSK_FRAME, face_px=KIOSK_FACE_PX)
        images.append(img)
        boxes.append(b)
    classes = [np.zeros(len(b), np.int64) for b in boxes]
    scenes = [(f"{split}/{i:05d}.png", Scene(img, b, c)) for i, (img, b, c) in enumerate(zip(images, boxes, classes,
                                                                                             strict=True))]
    coco = coco_dict(scenes, (256, 256))
    for entry, img in zip(coco["images"], images, strict=True):
        entry["height"], entry["width"] = img.shape[:2]  # coco_dict takes one size for all; the sizes differ here
    coco["categories"] = [{"id": 1, "name": "face", "supercategory": "face"}]
    return images, boxes, classes, coco


def _is_square_scene(i: int) -> bool:
    """Whether scene i of face_detection_split is a 256x256 one: SQUARE_SHARE of the indices, spread evenly."""
    return int((i + 1) * SQUARE_SHARE) > int(i * SQUARE_SHARE)


def facenet_recipe(tiny: bool) -> Recipe:
    """The encoder with the triplet loss: batches of P identities x K augmented views, semi-hard mining.

    A view is a kiosk crop with probability kiosk_p (kiosk_face_views: skin-tinted oval face on a background, cut
    square around a jittered box as face_crop does), else a plain face_views view. Train and dev errors are measured
    on that mix; plain_auc (kiosk_p 0) and kiosk_auc (kiosk_p 1) on the dev identities show each side.
    """
    splits = identity_splits()
    size, kiosk_p = 64, 0.7
    meta = {"task": "embed", "imgsz": [size, size], "names": [], "resize": "resize", "channel_order": "RGB",
            "mean": [0.5], "std": [0.25], "embedding_size": 128, "distance": "squared_l2", "model_name": "facenet"}
    spec = meta_from_flat(meta).preprocess
    p_ids, k_views, steps = (4, 2, 2) if tiny else (16, 4, 40)
    eval_views = 2 if tiny else 10

    def batches():
        rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
        train = splits["train"].faces
        for _ in range(steps):
            ids = rng.choice(len(train), p_ids, replace=False)
            views = np.concatenate([kiosk_face_views(train[i], k_views, rng, size, kiosk_p) for i in ids])
            yield torch.from_numpy(preprocess(list(views), spec).batch), torch.from_numpy(np.repeat(ids, k_views))

    def loss(model, batch):
        x, labels = batch
        value = batch_triplet_loss(model(x), labels, alpha=0.2, mining="semi-hard")
        return value, {"triplet": value.item()}

    fixed = {name: _eval_views(splits[split].faces[: 4 if tiny else 20], eval_views, size, p)
             for name, split, p in (("train", "train", kiosk_p), ("dev", "dev", kiosk_p), ("dev_plain", "dev", 0.0),
                                    ("dev_kiosk", "dev", 1.0))}

    def evaluate(model) -> dict[str, float]:
        pred = TorchPredictor(model, meta_from_flat(meta))
        m = {name: embedding_metrics(embed(pred, frames), labels) for name, (frames, labels) in fixed.items()}
        return {"train_error": 1 - m["train"]["auc"], "dev_error": 1 - m["dev"]["auc"], "auc": m["dev"]["auc"],
                "eer": m["dev"]["eer"], "tar_at_far_1e-2": m["dev"]["tar_at_far_1e-2"],
                "plain_auc": m["dev_plain"]["auc"], "kiosk_auc": m["dev_kiosk"]["auc"]}

    return Recipe("facenet", "facenet", {"embedding_size": 128}, meta, batches, loss, evaluate, "auc",
                  0.0, "a person tells these faces apart almost always (AUC about 1.0)",
                  epochs=1 if tiny else RECIPE_EPOCHS["facenet"], learning_rate=2e-3, eval_every=5)


def _eval_views(faces: np.ndarray, n: int, size: int, kiosk_p: float) -> tuple[list[np.ndarray], np.ndarray]:
    """Fixed views (seed 1, kiosk crops with probability kiosk_p) of each identity: frames and identity labels."""
    rng = np.random.default_rng(1)
    frames = [v for f in faces for v in kiosk_face_views(f, n, rng, size, kiosk_p)]
    return frames, np.repeat(np.arange(len(faces)), n)
