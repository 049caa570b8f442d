"""Moving a face gallery's contents: JSON export and import (round trip, clashes, all or nothing, the encoder,
schema and format checks) and re-encoding the stored crops with a new encoder."""

import base64
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.postprocess.errors import UserError
from tests.gallery_data import D, crops_for, make_encoder, vectors_for

# ---------------------------------------------------------------- export / import


def fill(db: FaceDB) -> None:
    db.enroll("Ann", vectors_for("Ann", 3), crops_for("Ann", 3), source="desk")
    db.enroll("Bob", vectors_for("Bob", 1))  # no crop
    db.enroll("Cleo", vectors_for("Cleo", 2), [np.full((9, 7), 200, np.uint8), np.eye(9, 7, dtype=np.uint8)])
    db.set_threshold(0.8, far=0.001)


def test_export_import_round_trip(tmp_path: Path, encoder: EncoderId, db: FaceDB):
    fill(db)
    out = tmp_path / "export.json"
    db.export_json(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # the temporary file was renamed
    doc = json.loads(out.read_text())
    ann = doc["people"][0]["embeddings"]  # crops: base64 PNG, pixel-exact (checked with cv2 directly)
    for row, crop in zip(ann, crops_for("Ann", 3), strict=True):
        png = np.frombuffer(base64.b64decode(row["crop_png"]), np.uint8)
        assert np.array_equal(cv2.imdecode(png, cv2.IMREAD_UNCHANGED), crop)
    assert doc["people"][1]["embeddings"][0]["crop_png"] is None
    with FaceDB.open(tmp_path / "copy.db", encoder) as copy:
        imported = copy.import_json(out)
        assert [(p.name, p.n_embeddings) for p in imported] == [("Ann", 3), ("Bob", 1), ("Cleo", 2)]
        assert copy.people() == db.people()  # names, counts and enrollment times
        for name in ("Ann", "Bob", "Cleo"):
            assert np.array_equal(copy.embeddings_of(name), db.embeddings_of(name))  # bit-exact through JSON
        assert copy.decision_threshold == db.decision_threshold
        assert [e.decision for e in copy.events()] == ["import"] * 3


def test_import_clash_replace_and_atomicity(tmp_path: Path, encoder: EncoderId, db: FaceDB):
    fill(db)
    out = tmp_path / "export.json"
    db.export_json(out)
    with FaceDB.open(tmp_path / "other.db", encoder) as other:
        other.enroll("Zed", vectors_for("Zed", 1))
        other.enroll("Bob", vectors_for("other Bob", 4))
        with pytest.raises(ValueError, match=r"already in gallery .*\['Bob'\]; import with --replace"):
            other.import_json(out)
        assert [(p.name, p.n_embeddings) for p in other.people()] == [("Zed", 1), ("Bob", 4)]  # nothing imported
        other.import_json(out, replace=True)
        assert {p.name: p.n_embeddings for p in other.people()} == {"Zed": 1, "Ann": 3, "Bob": 1, "Cleo": 2}
        assert np.array_equal(other.embeddings_of("Bob"), vectors_for("Bob", 1))
        doc = json.loads(out.read_text())
        doc["people"] = [dict(p, name=f"New {p['name']}") for p in doc["people"]]
        doc["people"][2]["embeddings"][1]["vector"] = [0.0] * (D - 1)  # the last person is broken
        broken = tmp_path / "broken.json"
        broken.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=r"people\[2\].*every vector must be a list of 16 numbers"):
            other.import_json(broken)
        doc["people"][2]["embeddings"][1]["crop_png"] = base64.b64encode(b"not a png").decode()
        doc["people"][2]["embeddings"][1]["vector"] = [0.0] * D
        broken.write_text(json.dumps(doc))
        with pytest.raises(ValueError, match=r"people\[2\].embeddings\[1\].crop_png is not a readable PNG"):
            other.import_json(broken)
        assert len(other.people()) == 4  # all or nothing: the good people before it were not imported either


def test_import_checks_encoder_schema_and_format(tmp_path: Path, encoder: EncoderId, db: FaceDB):
    fill(db)
    out = tmp_path / "export.json"
    db.export_json(out)
    other_encoder = make_encoder(tmp_path, b"encoder two", file="enc2.onnx")
    with FaceDB.open(tmp_path / "other.db", other_encoder) as other:
        with pytest.raises(ValueError, match=r"export.json was enrolled with encoder enc.onnx .*model is enc2.onnx"):
            other.import_json(out)
        assert other.people() == []
    doc = json.loads(out.read_text())
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(dict(doc, schema_version=2)))
    with pytest.raises(ValueError, match=r"schema version 2, newer than this edgepipe reads \(1\): upgrade edgepipe"):
        db.import_json(newer)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        db.import_json(garbage)
    garbage.write_text(json.dumps({"people": []}))
    with pytest.raises(ValueError, match="format must be 'edgepipe-face-gallery'"):
        db.import_json(garbage)
    with pytest.raises(UserError, match=r"nothere.json"):
        db.import_json(tmp_path / "nothere.json")
    with pytest.raises(UserError, match=r"folder .*nofolder does not exist"):
        db.export_json(tmp_path / "nofolder" / "out.json")


# ---------------------------------------------------------------- reencode


def embed_crops(crops: list[np.ndarray]) -> np.ndarray:
    """A stand-in encoder: the first D pixel values of each crop, scaled. (K, D) float32."""
    return np.stack([c.reshape(-1)[:D].astype(np.float32) / 255.0 for c in crops])


def test_reencode_recomputes_from_the_stored_crops(tmp_path: Path, encoder: EncoderId, db: FaceDB):
    db.enroll("Ann", vectors_for("Ann", 3), crops_for("Ann", 3))
    db.enroll("Cleo", vectors_for("Cleo", 2), [np.full((9, 7), 200, np.uint8), np.eye(9, 7, dtype=np.uint8)])
    before = db.matrix()
    new = make_encoder(tmp_path, b"encoder two", file="enc2.onnx")
    assert db.reencode(embed_crops, new) == 5
    assert np.array_equal(db.embeddings_of("Ann"), embed_crops(crops_for("Ann", 3)))  # from lossless crops
    assert np.array_equal(db.embeddings_of("Cleo")[1], np.eye(9, 7).reshape(-1)[:D].astype(np.float32) / 255.0)
    assert db.encoder == new and db.matrix() is not before
    with pytest.raises(ValueError, match=r"enrolled with encoder enc2.onnx"):
        FaceDB.open(db.path, encoder)
    FaceDB.open(db.path, new).close()


def test_reencode_is_all_or_nothing(tmp_path: Path, encoder: EncoderId, db: FaceDB):
    db.enroll("Ann", vectors_for("Ann", 3), crops_for("Ann", 3))
    db.enroll("Bob", vectors_for("Bob", 2), crops_for("Bob", 2))
    new = make_encoder(tmp_path, b"encoder two", file="enc2.onnx")
    calls = []

    def failing_embed(crops: list[np.ndarray]) -> np.ndarray:
        calls.append(len(crops))
        if len(calls) == 2:
            raise RuntimeError("the GPU fell over")
        return embed_crops(crops)

    with pytest.raises(RuntimeError, match="GPU fell over"):
        db.reencode(failing_embed, new)
    assert calls == [3, 2]  # Ann was re-encoded in the transaction, then rolled back
    with pytest.raises(ValueError, match=r"embed\(\) output for Ann must have shape \(K, 16\)"):
        db.reencode(lambda crops: np.zeros((len(crops), 8), np.float32), new)
    with pytest.raises(ValueError, match=r"must return 3 rows for Ann, one per crop: got 1"):
        db.reencode(lambda crops: np.zeros((1, D), np.float32), new)
    db.enroll("Cy", vectors_for("Cy", 1))
    db.enroll("Al", vectors_for("Al", 1))
    with pytest.raises(ValueError, match="no stored face crops for Al, Cy; remove them and enroll them again"):
        db.reencode(embed_crops, new)
    with FaceDB.open(db.path, encoder) as again:  # the old encoder and every old embedding are still there
        for name, k in (("Ann", 3), ("Bob", 2), ("Cy", 1)):
            assert np.array_equal(again.embeddings_of(name), vectors_for(name, k))
