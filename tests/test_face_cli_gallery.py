"""`edgepipe face` list, remove, export and import in-process, and the galleries it refuses and leaves as they are:
empty, from a newer schema, damaged, enrolled with another encoder (then --reencode), a failed import (issue 7)."""

import json
import sqlite3

import numpy as np
import onnx

from edgepipe.apps.face.gallery import FaceDB
from tests.face_commands import ENCODER, EXACT, NAMES, face, face_json, models


def test_list_remove_and_identify_on_an_empty_gallery(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    code, _, err = face(capsys, "list", "--gallery", gallery)
    assert code == 2 and "no face gallery" in err
    face_json(capsys, "enroll", "--name", "Alice", "--images", *photos["Alice"], *models(gallery))
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert [(p["name"], p["n_embeddings"]) for p in listing["people"]] == [("Alice", len(photos["Alice"]))]
    assert listing["encoder"]["name"] == "facenet.onnx" and listing["threshold"] is None
    removed = face_json(capsys, "remove", "Alice", "--gallery", gallery)
    assert removed["people"] == ["Alice"] and removed["embeddings"] == len(photos["Alice"])
    assert face_json(capsys, "list", "--gallery", gallery)["people"] == []
    code, _, err = face(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "1", *models(gallery))
    assert code == 2 and "is empty" in err and "edgepipe face enroll" in err


def test_a_gallery_from_a_newer_schema_is_refused_and_kept(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    for argv in (["list", "--gallery", gallery],
                 ["enroll", "--name", "Bob", "--images", photos["Bob"][0], *models(gallery)]):
        code, _, err = face(capsys, *argv)
        assert code == 2 and "schema version 99" in err and "upgrade edgepipe" in err
    with sqlite3.connect(gallery) as conn:
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert [(p["name"], p["n_embeddings"]) for p in listing["people"]] == [("Alice", 1)]


def test_a_damaged_gallery_is_one_line_and_left_as_it_is(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    damaged = b"SQLite format 3\x00" + bytes(range(256)) * 8  # SQLite's header, then garbage
    gallery.write_bytes(damaged)
    for argv in (["list", "--gallery", gallery],
                 ["enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery)]):
        code, _, err = face(capsys, *argv)
        assert code == 2 and err.startswith(f"edgepipe face: error: gallery {gallery} is damaged") and \
            err.count("\n") == 1
    assert gallery.read_bytes() == damaged


def test_a_wrong_encoder_is_refused_then_reencoded(tmp_path, capsys, photos):
    gallery = tmp_path / "faces.db"
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(gallery))
    retrained = onnx.load(str(ENCODER))
    retrained.doc_string = "the same weights in another file: another sha256"
    other = tmp_path / "facenet-v2.onnx"
    onnx.save(retrained, str(other))
    with_other = [*models(gallery), "--encoder", other]
    code, _, err = face(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "1", *with_other)
    assert code == 2 and "--reencode" in err and "facenet.onnx" in err
    assert face_json(capsys, "list", "--gallery", gallery)["encoder"]["name"] == "facenet.onnx"

    found = face_json(capsys, "identify", "--image", photos["Alice"][0], "--threshold", "0.01", *with_other,
                      "--reencode")
    assert found["name"] == "Alice" and found["distance"] < EXACT  # same weights: the same embedding again
    listing = face_json(capsys, "list", "--gallery", gallery)
    assert listing["encoder"]["name"] == "facenet-v2.onnx" and listing["people"][0]["n_embeddings"] == 1


def test_export_then_import_into_a_new_gallery(tmp_path, capsys, photos):
    gallery, copy, file = tmp_path / "faces.db", tmp_path / "copy.db", tmp_path / "gallery.json"
    for name in NAMES[:2]:
        face_json(capsys, "enroll", "--name", name, "--images", *photos[name], *models(gallery))
    exported = face_json(capsys, "export", file, "--gallery", gallery)
    assert exported["people"] == list(NAMES[:2])
    imported = face_json(capsys, "import", file, "--gallery", copy)
    assert imported["people"] == list(NAMES[:2]) and imported["embeddings"] == exported["embeddings"]
    with FaceDB.open(gallery, create=False) as a, FaceDB.open(copy, create=False) as b:
        assert a.encoder == b.encoder
        for name in NAMES[:2]:
            np.testing.assert_array_equal(a.embeddings_of(name), b.embeddings_of(name))
    code, _, err = face(capsys, "import", file, "--gallery", copy)
    assert code == 2 and "already in gallery" in err
    assert face_json(capsys, "import", file, "--gallery", copy, "--replace")["people"] == list(NAMES[:2])


def test_a_failed_import_creates_no_gallery(tmp_path, capsys):
    file = tmp_path / "gallery.json"
    file.write_text(json.dumps({"format": "edgepipe-face-gallery", "schema_version": 1, "people": [],
                                "encoder": {"sha256": "ab" * 32, "embedding_size": 128, "name": "x.onnx"},
                                "threshold": "not an object"}))
    code, _, err = face(capsys, "import", file, "--gallery", tmp_path / "new.db")
    assert code == 2 and "threshold must be an object" in err
    assert not (tmp_path / "new.db").exists()
