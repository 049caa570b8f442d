"""Evaluation against scikit-learn and pycocotools, and `edgepipe eval` on a checkpoint."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from edgepipe.apps.cli import main
from edgepipe.export.data.detection import DatasetConfig, make_detection_dataset
from edgepipe.export.metrics import classification_metrics, detection_metrics, embedding_metrics, precision_recall
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe
from edgepipe.postprocess.detections import Detections


@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 200)
    pred = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    m = classification_metrics(y, pred, ["a", "b", "c", "d"])
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    for i, name in enumerate("abcd"):
        assert m["per_class"][name]["precision"] == pytest.approx(p[i])
        assert m["per_class"][name]["recall"] == pytest.approx(r[i])
        assert m["per_class"][name]["f1"] == pytest.approx(f[i])
    assert m["confusion"] == confusion_matrix(y, pred, labels=range(4)).tolist()


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = make_detection_dataset(tmp_path_factory.mktemp("shapes"), DatasetConfig(n_train=1, n_dev=1, n_test=12))
    return json.loads((root / "test.json").read_text())


def truth(coco, shift=0.0, score=1.0):
    out = []
    for img in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == img["id"]]
        boxes = np.array([[a["bbox"][0] + shift, a["bbox"][1], a["bbox"][0] + a["bbox"][2] + shift,
                           a["bbox"][1] + a["bbox"][3]] for a in anns], np.float32).reshape(-1, 4)
        out.append(Detections(boxes, np.full(len(anns), score), np.array([a["category_id"] - 1 for a in anns])))
    return out


def test_perfect_detections_score_one_and_shifted_ones_less(coco):
    perfect = detection_metrics(coco, truth(coco))
    assert perfect["map50"] == pytest.approx(1.0) and perfect["map"] == pytest.approx(1.0)
    assert perfect["precision"] == 1.0 and perfect["recall"] == 1.0
    shifted = detection_metrics(coco, truth(coco, shift=6.0))
    assert shifted["map"] < perfect["map"]
    assert detection_metrics(coco, [Detections.empty() for _ in coco["images"]])["map50"] == 0.0


def brute_pr(coco, dets, thr, iou_thr=0.5):
    tp = fp = n = 0
    for img, det in zip(coco["images"], dets, strict=True):
        gts = [(a["bbox"], a["category_id"] - 1) for a in coco["annotations"] if a["image_id"] == img["id"]]
        n += len(gts)
        used = set()
        for i in sorted(range(len(det)), key=lambda k: -det.scores[k]):
            if det.scores[i] < thr:
                continue
            x1, y1, x2, y2 = det.xyxy[i].tolist()
            best, best_iou = None, iou_thr
            for j, ((gx, gy, gw, gh), c) in enumerate(gts):
                if j in used or c != det.class_ids[i]:
                    continue
                iw = max(0, min(x2, gx + gw) - max(x1, gx))
                ih = max(0, min(y2, gy + gh) - max(y1, gy))
                inter = iw * ih
                iou = inter / ((x2 - x1) * (y2 - y1) + gw * gh - inter)
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best is None:
                fp += 1
            else:
                used.add(best)
                tp += 1
    return tp / max(1, tp + fp), tp / n


@pytest.mark.parametrize("seed", range(5))
def test_precision_recall_matches_greedy_loop(coco, seed):
    rng = np.random.default_rng(seed)
    dets = []
    for d in truth(coco):
        noisy = d.xyxy + rng.normal(0, 4, d.xyxy.shape)
        noisy[:, 2:] = np.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        extra = rng.uniform(0, 200, (3, 2))
        boxes = np.concatenate([noisy, np.concatenate([extra, extra + 30], 1)])
        dets.append(Detections(boxes, rng.uniform(0, 1, len(boxes)), rng.integers(0, 3, len(boxes))))
    p, r = precision_recall(coco, dets, 0.3)
    assert (p, r) == pytest.approx(brute_pr(coco, dets, 0.3))


def test_embedding_metrics_separate_identities():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 16))
    emb = np.repeat(centers, 5, axis=0) + rng.normal(0, 0.05, (50, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    m = embedding_metrics(emb, np.repeat(np.arange(10), 5))
    assert m["auc"] > 0.99 and m["eer"] < 0.02
    assert m["genuine_pairs"] == 10 * 10 and m["impostor_pairs"] == 50 * 49 // 2 - 100


def test_cli_eval_checkpoint(tmp_path, capsys):
    fit(make_recipe("lenet5", tiny=True), tmp_path / "run", progress=False)
    assert main(["eval", str(tmp_path / "run" / "best.pt"), "--split", "dev", "--json", "--out",
                 str(tmp_path / "ev")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["backend"] == "pytorch" and 0.0 <= out["accuracy"] <= 1.0
    assert len(out["confusion"]) == 10 and (tmp_path / "ev" / "metrics.json").is_file()
    assert main(["eval", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_cli_eval_of_a_detector_writes_its_pictures_whole(tmp_path, capsys):
    out = tmp_path / "ev"
    model = Path(__file__).resolve().parent / "assets" / "yolo-small.onnx"
    assert main(["eval", str(model), "--split", "dev", "--json", "--quiet", "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["annotated_00.png", "annotated_01.png", "annotated_02.png", "annotated_03.png",
                     "metrics.json", "pr_curve.png"]  # no temporary file left beside them
    for name in [*names[:4], "pr_curve.png"]:
        assert cv2.imread(str(out / name)) is not None, name
    assert json.loads((out / "metrics.json").read_text())["map50"] == result["map50"]
