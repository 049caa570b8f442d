"""`edgepipe eval`: one evaluation for a PyTorch checkpoint or an ONNX file, through the same pre/postprocessing."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from edgepipe.export.data.detection import DatasetConfig, coco_dict, load_split, split_scenes
from edgepipe.export.data.digits import load_digits_splits
from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.keypoints import KEYPOINT_SIGMA
from edgepipe.export.data.windows import window_detection_split, window_split
from edgepipe.export.metrics import classification_metrics, detection_metrics, embedding_metrics, keypoint_metrics
from edgepipe.export.options import EvalOptions
from edgepipe.export.predict import (
    OnnxPredictor,
    TorchPredictor,
    classify,
    detect,
    detection_settings,
    embed,
    meta_from_flat,
)
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input, Output, check_outputs, write_atomic

log = logging.getLogger("edgepipe.eval")

ANNOTATED = 4  # test images saved with their detections drawn
COLORS = ((0, 0, 255), (0, 200, 0), (255, 0, 0), (0, 200, 255))  # BGR, by class id
DENSE = ("logistic", "shallow", "deep", "softmax")


def predictor_for(path: str | Path, provider: str = "cpu"):
    """An OnnxPredictor for .onnx files, else a TorchPredictor from an edgepipe checkpoint."""
    from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint

    path = Path(path)
    if path.suffix == ".onnx":
        return OnnxPredictor(str(path), provider)
    ckpt = load_checkpoint(path)
    return TorchPredictor(model_from_checkpoint(ckpt), meta_from_flat(ckpt["meta"], ckpt.get("metrics")),
                          flatten=ckpt["model"] in DENSE)


def evaluate(options: EvalOptions) -> dict:
    """Metrics of a model on a split of its data: {"model", "backend", "task", "split", "data" (what was measured),
    **the task's metrics} (metrics.py; detectors also give the conf, iou and max_det used); writes metrics.json and a
    PR or ROC curve PNG to options.out when given, a folder checked before any work (writable, not the model)."""
    path, split, progress = options.model, options.split, options.progress
    if options.out is not None:
        check_outputs([Output("--out", Path(options.out), folder=True, files=eval_files(Path(options.out)))],
                      [Input("model", path)])
    predictor = predictor_for(path, options.provider)
    meta = predictor.meta
    name = meta.model_name
    if meta.task == "classify":
        result = _classifier(predictor, name, split, progress)
    elif meta.task == "detect":
        result = _detector(predictor, name, split, Path(options.data), options, progress)
    elif meta.task == "embed":
        result = _encoder(predictor, split, progress)
    elif meta.task == "verify" and name == "siamese-head":
        result = _verifier(predictor, path, options.encoder, split, progress)
    else:
        raise UserError(f"evaluation of task {meta.task!r} is not supported: evaluate its encoder instead")
    result = {"model": str(path), "backend": "onnxruntime" if path.suffix == ".onnx" else "pytorch",
              "task": meta.task, "split": split, **result}
    if options.out is not None:
        out = Path(options.out)
        out.mkdir(parents=True, exist_ok=True)
        _plot(result, out)
        write_atomic(out / "metrics.json", json.dumps(result, indent=2).encode())
    return result


def eval_files(out: Path) -> tuple[Path, ...]:
    """What evaluate may write in its --out folder (checked before any work)."""
    return (out / "metrics.json", out / "pr_curve.png", out / "roc.png",
            *(out / f"annotated_{i:02d}.png" for i in range(ANNOTATED)))


def _classifier(predictor, name: str, split: str, progress: bool) -> dict:
    if name == "window":
        frames, y = window_split(split)
        data = {"data": f"windows cut from the window scenes' {split} split", "images": len(frames)}
        return {**data, **classification_metrics(y, classify(predictor, list(frames), progress),
                                                 predictor.meta.class_names)}
    s = load_digits_splits()[split]
    if name in DENSE:
        frames = list((s.x * 255).round().astype(np.uint8).reshape(-1, 8, 8))
        y = (s.y == 0).astype(np.int64) if name == "logistic" else s.y
    elif name == "lenet5":
        frames, y = list(s.images), s.y
    else:
        raise UserError(f"no local data set to evaluate classifier {name!r} on (the digits models only)")
    data = {"data": f"digits {split} split", "images": len(frames)}
    return {**data, **classification_metrics(y, classify(predictor, frames, progress), predictor.meta.class_names)}


def _detector(predictor, name: str, split: str, data_dir: Path, options: EvalOptions, progress: bool) -> dict:
    if name == "yolo-face":
        from edgepipe.export.train.recipes import face_detection_split

        images, _, _, coco = face_detection_split(split, 200)
        data = f"face scenes of the {split} identities"
    elif name == "window-conv":
        images, coco = window_detection_split(split)
        data = f"window scenes {split} split (generated)"
    else:
        images, coco, data = _shapes_split(data_dir / "shapes", split)
    conf, iou, max_det = detection_settings(predictor.meta, options.conf, options.iou)
    detections = detect(predictor, images, conf, iou, progress)
    if options.out is not None:
        _save_annotated(images[:ANNOTATED], detections[:ANNOTATED], Path(options.out))
    settings = {"data": data, "images": len(images), "conf": conf, "iou": iou, "max_det": max_det}
    if predictor.meta.kpt_shape:  # landmarks too: the shapes' keypoints (export.data.keypoints)
        if coco["annotations"] and "keypoints" not in coco["annotations"][0]:
            raise UserError(f"{data} was made before the shapes had landmarks: run `edgepipe train yolo-pose` (it "
                            "makes them again) or delete the folder")
        return {**settings, **detection_metrics(coco, detections), **keypoint_metrics(coco, detections, KEYPOINT_SIGMA)}
    return {**settings, **detection_metrics(coco, detections)}


def _shapes_split(root: Path, split: str) -> tuple[list[np.ndarray], dict, str]:
    """The generated shapes split from root (written by `edgepipe train yolo-small`), else the default data set's
    split generated in memory (deterministic: the same images). Returns images, the COCO dict, what they are."""
    if (root / f"{split}.json").is_file():
        images, _, _, coco = load_split(root, split)
        return images, coco, f"shapes {split} split ({root})"
    config = DatasetConfig()
    log.info("no %s split at %s: generating the default data set's %s split in memory", split, root, split)
    scenes = [(f"{split}/{i:05d}.png", scene) for i, scene in enumerate(split_scenes(config, split))]
    return [s.image for _, s in scenes], coco_dict(scenes, config.image_size), f"shapes {split} split (generated)"


def _save_annotated(images: list[np.ndarray], detections: list, out: Path, min_score: float = 0.25) -> None:
    """A few frames with their detections (score >= min_score) drawn, as out/annotated_NN.png."""
    import cv2

    out.mkdir(parents=True, exist_ok=True)
    for i, (img, det) in enumerate(zip(images, detections, strict=True)):
        canvas = img.copy()
        for d in det.filter(min_score=min_score).to_dicts():
            x1, y1, x2, y2 = (round(v) for v in d["xyxy"])
            color = COLORS[d["class_id"] % len(COLORS)]
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, 1)
            cv2.putText(canvas, f"{d['class_name']} {d['score']:.2f}", (x1, max(8, y1 - 2)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.3, color, 1, cv2.LINE_AA)
        write_atomic(out / f"annotated_{i:02d}.png", cv2.imencode(".png", canvas)[1].tobytes())


def _encoder(predictor, split: str, progress: bool) -> dict:
    frames, labels = _identity_views(predictor, split)
    data = {"data": f"face views of the {labels.max() + 1} {split} identities, 10 each", "images": len(frames)}
    return {**data, **embedding_metrics(embed(predictor, frames, progress), labels)}


def _identity_views(encoder, split: str, n: int = 10) -> tuple[list[np.ndarray], np.ndarray]:
    """n plain face_views (seed 2) of each identity of a split at the encoder's input size, and their labels."""
    from edgepipe.export.data.faces import face_views

    faces = identity_splits()[split].faces
    rng = np.random.default_rng(2)
    size = encoder.meta.preprocess.input_size[0]
    return [v for f in faces for v in face_views(f, n, rng, size)], np.repeat(np.arange(len(faces)), n)


def _verifier(head, path: Path, encoder: Path | None, split: str, progress: bool) -> dict:
    """A Siamese head on its encoder's embeddings of the split's identities (plain views, as for encoders): its
    probability's ROC beside the squared distance's, on the same pairs."""
    from edgepipe.export.train.loop import load_checkpoint
    from edgepipe.export.train.siamese import encoder_predictor, head_metrics, torch_head

    if encoder is None and path.suffix != ".onnx":
        encoder = Path(load_checkpoint(path).get("extra", {}).get("encoder", ""))
    if encoder is None or not str(encoder):
        raise UserError(f"{path} is a Siamese head: give its face encoder with --encoder ENCODER.onnx")
    encoder_model = encoder_predictor(encoder)
    sha = head.meta.encoder_sha256
    if sha and encoder.suffix == ".onnx" and hashlib.sha256(encoder.read_bytes()).hexdigest() != sha:
        raise UserError(f"{path} was trained on another encoder's embeddings than {encoder}'s: give the encoder it "
                        "was trained with, or train a head for this one (edgepipe train siamese --encoder ...)")
    frames, labels = _identity_views(encoder_model, split)
    embeddings = embed(encoder_model, frames, progress)
    if embeddings.shape[1] != head.meta.embedding_size:
        raise UserError(f"{encoder} gives {embeddings.shape[1]}-d embeddings, {path} takes "
                        f"{head.meta.embedding_size}-d ones")
    if path.suffix == ".onnx":
        def probability(first: np.ndarray, second: np.ndarray) -> np.ndarray:
            return head.model.run(first, second)[0]
    else:
        probability = torch_head(head.model)
    data = {"data": f"face views of the {labels.max() + 1} {split} identities, 10 each", "images": len(frames)}
    return {**data, **head_metrics(probability, embeddings, labels)}


def _plot(result: dict, out: Path) -> None:
    """The PR curve (detectors) or the ROC (encoders) as out/pr_curve.png or out/roc.png, written whole."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    if "pr_curve" in result:
        r, p = zip(*result["pr_curve"], strict=True) if result["pr_curve"] else ((), ())
        ax.plot(r, p)
        ax.set(xlabel="recall", ylabel="precision", title=f"PR at IoU 0.5, mAP@0.5 {result['map50']:.3f}")
        name = "pr_curve.png"
    elif "roc" in result:
        ax.plot(result["roc"]["far"], result["roc"]["tar"])
        ax.set(xscale="symlog", xlabel="false accept rate", ylabel="true accept rate",
               title=f"ROC, AUC {result['auc']:.3f}")
        name = "roc.png"
    else:
        plt.close(fig)
        return
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=80)
    plt.close(fig)
    write_atomic(out / name, png.getvalue())
