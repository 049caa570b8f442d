"""Verification as binary classification: the siamese recipe trains the head on a frozen encoder's embeddings, the
head and the two-image network export with parity, the head's evaluation sets it beside the distance, and
`face verify --siamese HEAD.onnx` decides by its probability (checked against the head's own weights in numpy)."""

import hashlib

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgepipe.apps.face.gallery import FaceDB
from edgepipe.export.evaluate import evaluate
from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import EvalOptions, ExportOptions, TrainOptions
from edgepipe.export.train.loop import load_checkpoint
from edgepipe.export.train.pipeline import train
from edgepipe.runtime import load
from tests.face_commands import ENCODER, REPO, embed, face, face_json, models

HEAD = REPO / "tests" / "assets" / "siamese-head.onnx"


def head_by_hand(path, e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """sigmoid(w . |e1 - e2| + b) in float64 from the file's weights: the course's logistic unit."""
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in onnx.load(str(path)).graph.initializer}
    w = next(v for v in weights.values() if v.ndim == 2)[0]  # (1, D) -> (D,)
    b = next(v for v in weights.values() if v.ndim == 1)[0]
    return 1 / (1 + np.exp(-(np.abs(e1.astype(np.float64) - e2) @ w + b)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("siamese")
    return train(TrainOptions("siamese", out, tiny=True, progress=False, encoder=ENCODER))


def test_the_recipe_trains_only_a_head_and_keeps_its_encoder(trained):
    ckpt = load_checkpoint(trained.out_dir / "best.pt")
    assert ckpt["model"] == "siamese-head" and set(ckpt["state_dict"]) == {"linear.weight", "linear.bias"}
    assert ckpt["meta"]["encoder_sha256"] == hashlib.sha256(ENCODER.read_bytes()).hexdigest()
    assert ckpt["extra"]["encoder"] == str(ENCODER)
    assert {"auc", "distance_auc", "tar_at_far_1e-2"} <= set(trained.best_metrics)
    assert 0.5 < trained.best_metrics["distance_auc"] <= 1.0


def test_the_head_exports_with_parity_and_evaluates_like_its_checkpoint(tmp_path, trained):
    report = export_model(ExportOptions(trained.out_dir / "best.pt", tmp_path / "head.onnx"))
    assert report.model.parity < 1e-6
    model = load(report.model.path, providers="cpu")
    assert [i.name for i in model.inputs] == ["embeddings1", "embeddings2"] and model.meta.task == "verify"
    e = np.random.default_rng(0).normal(size=(6, 128)).astype(np.float32)
    np.testing.assert_allclose(model.run(e[:3], e[3:])[0], head_by_hand(report.model.path, e[:3], e[3:]), atol=1e-6)
    by_onnx = evaluate(EvalOptions(report.model.path, split="dev", encoder=ENCODER))
    by_torch = evaluate(EvalOptions(trained.out_dir / "best.pt", split="dev"))  # the encoder its checkpoint names
    assert by_onnx["auc"] == pytest.approx(by_torch["auc"], abs=1e-6)
    assert by_onnx["distance_auc"] == pytest.approx(by_torch["distance_auc"])  # the same pairs, by distance


def test_the_two_image_network_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    report = export_model(ExportOptions("siamese", tmp_path / "siamese.onnx"))
    model = load(report.model.path, providers="cpu")
    assert [i.name for i in model.inputs] == ["images1", "images2"] and report.model.parity < 1e-4
    with pytest.raises(ValueError, match="--fp16, --int8 and --uint8-input take models of one image input"):
        export_model(ExportOptions("siamese-head", tmp_path / "head.onnx", fp16=True))


def test_recipe_needs_an_encoder(tmp_path):
    with pytest.raises(ValueError, match="recipe siamese needs --encoder"):
        train(TrainOptions("siamese", tmp_path, tiny=True, progress=False))
    with pytest.raises(ValueError, match="is a 'detect' model, not a face encoder"):
        train(TrainOptions("siamese", tmp_path, tiny=True, progress=False,
                           encoder=REPO / "tests" / "assets" / "yolo-face.onnx"))


def test_face_verify_decides_by_the_heads_probability(tmp_path, capsys, photos, analyzer):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", *photos["Alice"][1:], *models(gallery))
    for probe, claimed in ((photos["Alice"][0], True), (photos["Bob"][0], False)):
        verdict = face_json(capsys, "verify", "--name", "Alice", "--image", probe, "--siamese", HEAD,
                            *models(gallery), code=0 if claimed else 1)  # exit code 1: no match
        with FaceDB.open(gallery, create=False) as db:
            stored = db.embeddings_of("Alice")
        p = head_by_hand(HEAD, np.repeat(embed(analyzer, probe)[None], len(stored), axis=0), stored)
        assert verdict["probability"] == pytest.approx(p.max(), abs=1e-5)  # the most likely embedding decides
        assert verdict["match"] is claimed and verdict["match"] == (p.max() >= 0.5)
        assert verdict["threshold"] == 0.5 and verdict["threshold_from"] == f"--siamese {HEAD.name}"
    with FaceDB.open(gallery, create=False) as db:
        assert db.events(1)[0].decision.startswith("no match (siamese 0.")
    code, out, _ = face(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], "--siamese", HEAD,
                        "--min-probability", "0.999999", *models(gallery))
    assert code == 1 and out.startswith("no match:") and "< 1.00 (--siamese siamese-head.onnx" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--siamese", ENCODER], r"facenet.onnx is not a Siamese head \(task 'verify'"),  # an encoder, not a head
        (["--siamese", HEAD, "--threshold", "0.5"], "with --siamese the head's probability decides"),
        (["--siamese", HEAD, "--min-probability", "1"], r"--min-probability must be in \(0, 1\)"),
    ],
)
def test_face_verify_refuses_a_wrong_head(tmp_path, capsys, photos, extra, message):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    code, _, err = face(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], *extra, *models(gallery))
    assert code == 2 and "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_a_head_of_another_encoder_is_refused(tmp_path, capsys, photos):
    proto = onnx.load(str(HEAD))
    meta = next(p for p in proto.metadata_props if p.key == "edgepipe")
    meta.value = meta.value.replace(hashlib.sha256(ENCODER.read_bytes()).hexdigest(), "0" * 64)
    onnx.save(proto, str(tmp_path / "other.onnx"))
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    code, _, err = face(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], "--siamese",
                        tmp_path / "other.onnx", *models(gallery))
    assert code == 2 and "was trained on the embeddings of another encoder" in err
