"""`edgepipe quantize`: variants of an Ultralytics-style YOLOv8 file (the trained course YOLO rewritten in that format),
checked against its own detections; the agreement measure against a brute-force matcher."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.postprocess.agreement import agreement
from edgepipe.postprocess.detections import Detections
from edgepipe.runtime import load
from tests.detect_runs import scene_folder
from tests.onnx_graphs import conv_model, course_as_yolov8, save

ASSETS = Path(__file__).resolve().parent / "assets"
NAMES = ("circle", "square", "triangle")


@pytest.fixture(scope="module")
def yolov8(tmp_path_factory) -> Path:
    """The trained small YOLO as an Ultralytics YOLOv8 export (no edgepipe metadata)."""
    folder = tmp_path_factory.mktemp("v8")
    return save(course_as_yolov8(onnx.load(str(ASSETS / "yolo-small.onnx")), NAMES, 160), folder / "yolov8.onnx")


@pytest.fixture(scope="module")
def calib(tmp_path_factory) -> Path:
    """40 generated scenes: 24 calibrate, the last 16 are held back."""
    return scene_folder(tmp_path_factory.mktemp("calib"), 40, seed=11)


def brute_agreement(variant: list[Detections], reference: list[Detections], thr: float = 0.5) -> tuple[float, ...]:
    """Precision, recall and max shift by plain loops: highest score first, the free same-class box of best IoU."""
    matched = n_v = n_r = 0
    shift = 0.0
    for v, r in zip(variant, reference, strict=True):
        n_v, n_r = n_v + len(v), n_r + len(r)
        used: set[int] = set()
        for i in sorted(range(len(v)), key=lambda k: -v.scores[k]):
            best, best_iou = None, thr
            for j in range(len(r)):
                if j in used or r.class_ids[j] != v.class_ids[i]:
                    continue
                a, b = v.xyxy[i].astype(float), r.xyxy[j].astype(float)
                inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
                iou = inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)
                if iou >= best_iou and (best is None or iou > best_iou):
                    best, best_iou = j, iou
            if best is not None:
                used.add(best)
                matched += 1
                shift = max(shift, float(np.abs(v.xyxy[i] - r.xyxy[best]).max()))
    return (matched / n_v if n_v else 1.0), (matched / n_r if n_r else 1.0), shift


@pytest.mark.parametrize("seed", range(6))
def test_agreement_matches_a_brute_force_loop(seed):
    rng = np.random.default_rng(seed)
    reference, variant = [], []
    for _ in range(4):
        xy = rng.uniform(0, 100, (6, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (6, 2))], axis=1).astype(np.float32)
        classes = rng.integers(0, 3, 6)
        reference.append(Detections(boxes, rng.uniform(0.3, 1, 6), classes))
        keep = rng.random(6) < 0.8  # some boxes lost, the rest jittered (some beyond IoU 0.5), some class flips
        moved = boxes[keep] + rng.normal(0, 3, (keep.sum(), 4)).astype(np.float32)
        moved[:, 2:] = np.maximum(moved[:, 2:], moved[:, :2] + 1)
        flips = np.where(rng.random(keep.sum()) < 0.1, (classes[keep] + 1) % 3, classes[keep])
        extra = rng.uniform(0, 100, (1, 2))
        variant.append(Detections(np.concatenate([moved, np.concatenate([extra, extra + 10], 1)]).astype(np.float32),
                                  rng.uniform(0.3, 1, keep.sum() + 1), np.append(flips, 0)))
    got = agreement(variant, reference)
    assert (got.precision, got.recall, got.max_shift) == pytest.approx(brute_agreement(variant, reference), abs=1e-6)
    assert got.score == min(got.precision, got.recall) < 1.0


def test_quantize_writes_the_variants_that_agree(tmp_path, yolov8, calib, capsys):
    out = tmp_path / "v8.onnx"
    assert main(["quantize", str(yolov8), "--calib", str(calib), "--out", str(out), "--fp16", "--uint8-input",
                 "--min-agreement", "0.8", "--bench-runs", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "v8.quantize.report.json").read_text())
    assert [(f["kind"], f["status"]) for f in report["files"]] == [
        ("fp32", "input"), ("int8", "written"), ("fp16", "written"), ("uint8", "written")]
    assert "int8" in printed and "v8.quantize.report.md" in printed
    held = [cv2.imread(str(p)) for p in sorted(calib.iterdir())[-16:]]
    original = Detector(load(yolov8, providers="cpu"))
    expected = [original(image)[0] for image in held]
    for f in report["files"][1:]:
        model = load(f["path"], providers="cpu")
        assert model.meta.head == "yolov8" and model.meta.evaluation["metric"] == "agreement"
        found = [Detector(model)(image)[0] for image in held]
        precision, recall, shift = brute_agreement(found, expected)
        assert model.meta.evaluation["precision"] == pytest.approx(precision, abs=1e-6)
        assert model.meta.evaluation["recall"] == pytest.approx(recall, abs=1e-6)
        assert model.meta.evaluation["max_shift_px"] == pytest.approx(shift, abs=1e-3)
        assert f["value"] == pytest.approx(min(precision, recall), abs=1e-6)
    int8 = onnx.load(report["files"][1]["path"])
    assert "QuantizeLinear" in {n.op_type for n in int8.graph.node}
    frames_in = load(report["files"][3]["path"], providers="cpu").inputs[0]
    assert frames_in.describe() == "images: uint8 (batch, 160, 160, 3)"
    assert yolov8.read_bytes() == save(course_as_yolov8(onnx.load(str(ASSETS / "yolo-small.onnx")), NAMES, 160),
                                       tmp_path / "again.onnx").read_bytes()  # the input was not rewritten


def test_a_variant_calibrated_on_the_wrong_images_is_refused(tmp_path, yolov8, calib, capsys):
    gray = tmp_path / "gray"
    gray.mkdir()
    for i in range(6):  # flat frames calibrate; the held-back real scenes show the damage
        cv2.imwrite(str(gray / f"a{i}.png"), np.full((160, 160, 3), 114, np.uint8))
    for p in sorted(calib.iterdir())[-16:]:
        cv2.imwrite(str(gray / f"z{p.name}"), cv2.imread(str(p)))
    assert main(["quantize", str(yolov8), "--calib", str(gray), "--out", str(tmp_path / "g.onnx"), "--bench-runs",
                 "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "edgepipe quantize: int8 not written: precision" in err
    assert not (tmp_path / "g.int8.onnx").exists()


@pytest.mark.parametrize(
    ("make", "calib_count", "message"),
    [
        ("v8", 10, "it needs more than --holdout 16"),  # too few images to hold any back
        ("v8", 20, "detects nothing on the 16 held-back images at conf 0.25"),  # black frames: nothing to compare
        ("classifier", 20, "is missing head"),  # not a detector
    ],
)
def test_quantize_refuses_what_it_cannot_check(tmp_path, yolov8, capsys, make, calib_count, message):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(calib_count):
        cv2.imwrite(str(folder / f"{i}.png"), np.zeros((32, 32, 3), np.uint8))
    model = yolov8 if make == "v8" else save(conv_model()[0], tmp_path / "c.onnx")
    extra = ["--meta", "task=detect", "--meta", "imgsz=32", "--meta", 'names=["a"]'] if make == "classifier" else []
    assert main(["quantize", str(model), "--calib", str(folder), "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err
