"""The new recipes at --tiny: window and yolo-pose train, export with parity (the window also in its convolutional
form) and carry their heads' metadata; a pose checkpoint fine-tunes from a yolo-small of the same family."""

import numpy as np
import pytest
import torch

from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import ExportOptions, TrainOptions
from edgepipe.export.train.loop import fit, load_checkpoint
from edgepipe.export.train.pipeline import train
from edgepipe.export.train.recipes import make_recipe
from edgepipe.export.train.transfer import start_model
from edgepipe.runtime import load


def test_window_trains_and_exports_both_forms(tmp_path):
    result = train(TrainOptions("window", tmp_path / "run", tiny=True, progress=False, keep_prob=0.5))
    assert {"accuracy", "map50", "dev_recall"} <= set(result.best_metrics)
    report = export_model(ExportOptions(result.out_dir / "best.pt", tmp_path / "window.onnx", conv=True))
    assert [f.kind for f in report.files] == ["fp32", "conv"] and all(f.parity < 1e-4 for f in report.files)
    conv = load(report.files[1].path, providers="cpu")
    assert conv.meta.metrics["accuracy"] == pytest.approx(result.best_metrics["accuracy"])  # the classifier's
    assert conv.meta.preprocess.input_size == (96, 96) and conv.inputs[0].shape[2:] == ("height", "width")


def test_yolo_pose_trains_and_exports_with_its_landmarks(tmp_path):
    result = train(TrainOptions("yolo-pose", tmp_path / "run", data=tmp_path / "data", tiny=True, progress=False))
    assert {"map50", "keypoint_ap", "keypoint_ap50"} <= set(result.best_metrics)
    ckpt = load_checkpoint(result.out_dir / "best.pt")
    assert ckpt["build_kwargs"]["num_classes"] == 3 and ckpt["meta"]["kpt_shape"] == [4, 2]
    report = export_model(ExportOptions(result.out_dir / "best.pt", tmp_path / "pose.onnx"))
    assert report.model.parity < 1e-4
    meta = load(report.model.path, providers="cpu").meta
    assert (meta.head, meta.kpt_shape, meta.class_keypoints) == ("yolo-course-pose", (4, 2), (4, 4, 3))


def test_a_yolo_small_starts_a_yolo_pose_but_a_facenet_does_not(tmp_path):
    small = make_recipe("yolo-small", tmp_path / "data", tiny=True)
    fit(small, tmp_path / "small", progress=False)
    pose = make_recipe("yolo-pose", tmp_path / "data", tiny=True)
    model = start_model(pose, None, tmp_path / "small" / "best.pt", freeze_backbone=True)
    source = load_checkpoint(tmp_path / "small" / "best.pt")["state_dict"]
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, source[f"backbone.{name}"])  # the yolo-small's backbone, its statistics too
    assert model.head.weight.shape[0] == 3 * (5 + 3 + 2 * 4)  # a fresh head with the landmarks' channels
    assert not np.any([p.requires_grad for p in model.backbone.parameters()])
    with pytest.raises(ValueError, match="not a 'yolo-pose'"):
        start_model(pose, tmp_path / "small" / "best.pt", None, False)  # resume needs the same model
