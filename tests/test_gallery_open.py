"""Opening a face gallery (apps/face/gallery/): the encoder identity, creating the SQLite file, the encoder and
schema checks, files that are not galleries, read-only use, and a writer that waits for another."""

import hashlib
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgepipe.apps.face.gallery import SCHEMA_VERSION, EncoderId, FaceDB
from edgepipe.postprocess.errors import UserError
from tests.gallery_data import D, make_encoder, raw, vectors_for

# ---------------------------------------------------------------- encoder identity


def test_encoder_of_file_hashes_the_bytes(tmp_path: Path):
    content = b"\x08\x07" * 1000
    enc = make_encoder(tmp_path, content, size=128, file="facenet.onnx")
    assert enc == EncoderId(hashlib.sha256(content).hexdigest(), 128, "facenet.onnx")
    assert enc.describe() == f"facenet.onnx (sha256 {hashlib.sha256(content).hexdigest()[:12]}..., 128-d)"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("a" * 63, 128, "m.onnx"), "64 lowercase hex"),  # too short
        (("A" * 64, 128, "m.onnx"), "64 lowercase hex"),  # upper case
        (("a" * 64, 0, "m.onnx"), "embedding_size must be an integer >= 1"),
        (("a" * 64, 12.0, "m.onnx"), "embedding_size must be an integer >= 1"),  # a float
        (("a" * 64, 128, ""), "name must be a non-empty string"),
    ],
)
def test_encoder_id_rejects_bad_fields(args, error):
    with pytest.raises(ValueError, match=error):
        EncoderId(*args)


def test_encoder_of_missing_file(tmp_path: Path):
    with pytest.raises(UserError, match=r"nothere.onnx"):
        EncoderId.of_file(tmp_path / "nothere.onnx", 128)


# ---------------------------------------------------------------- opening, creating, checks of the file


def test_created_file_is_wal_with_schema_and_encoder(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    conn = raw(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta["schema_version"] == SCHEMA_VERSION == 1
    assert (meta["encoder_sha256"], meta["encoder_size"], meta["encoder_name"]) == (encoder.sha256, D, "enc.onnx")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with FaceDB.open(path) as db:  # no encoder given: the stored one
        assert db.encoder == encoder


def test_other_encoder_is_refused_with_the_fix(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    other = make_encoder(tmp_path, b"encoder two", file="enc2.onnx")
    with pytest.raises(ValueError) as info:
        FaceDB.open(path, other)
    assert str(info.value) == (
        f"gallery {path} was enrolled with encoder enc.onnx (sha256 {encoder.sha256[:12]}..., 16-d), but the model "
        f"is enc2.onnx (sha256 {other.sha256[:12]}..., 16-d): re-enroll, or run with --reencode"
    )
    resized = EncoderId(encoder.sha256, 32, "enc.onnx")  # same bytes, other embedding size: refused too
    with pytest.raises(ValueError, match="32-d"):
        FaceDB.open(path, resized)
    renamed = EncoderId(encoder.sha256, D, "renamed.onnx")  # the same model under another file name: accepted
    FaceDB.open(path, renamed).close()


def test_creating_needs_an_encoder(tmp_path: Path):
    with pytest.raises(ValueError, match=r"needs the encoder: pass encoder=EncoderId.of_file"):
        FaceDB.open(tmp_path / "g.db")


def test_newer_schema_is_refused(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    raw(path).execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
    with pytest.raises(ValueError) as info:
        FaceDB.open(path, encoder)
    assert str(info.value) == (
        f"gallery {path} has schema version 2, newer than this edgepipe reads (1): upgrade edgepipe"
    )


def test_not_sqlite_and_not_a_gallery(tmp_path: Path, encoder: EncoderId):
    text = tmp_path / "notes.db"
    text.write_text("these are notes, not a database")
    with pytest.raises(ValueError, match="not an SQLite database"):
        FaceDB.open(text, encoder)
    assert text.read_text() == "these are notes, not a database"  # left alone
    other = tmp_path / "other.db"
    raw(other).execute("CREATE TABLE orders (id INTEGER)")
    with pytest.raises(ValueError, match=r"SQLite database but not a face gallery \(tables \['orders'\]"):
        FaceDB.open(other, encoder)
    with pytest.raises(ValueError, match="is a folder"):
        FaceDB.open(tmp_path, encoder)


def test_empty_file_becomes_a_gallery(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "empty.db"
    path.touch()
    with FaceDB.open(path, encoder) as db:
        assert db.people() == []
        assert db.encoder == encoder


def test_missing_files(tmp_path: Path, encoder: EncoderId):
    missing = tmp_path / "missing.db"
    with pytest.raises(UserError, match=str(missing)):
        FaceDB.open(missing, encoder, readonly=True)
    with pytest.raises(UserError, match=str(missing)):
        FaceDB.open(missing, encoder, create=False)
    assert not missing.exists()
    with pytest.raises(UserError, match=r"folder .*nofolder does not exist"):
        FaceDB.open(tmp_path / "nofolder" / "g.db", encoder)


def test_readonly_reads_but_refuses_writes(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    with FaceDB.open(path, encoder) as db:
        db.enroll("Ann", vectors_for("Ann", 2))
    with FaceDB.open(path, encoder, readonly=True) as db:
        assert np.array_equal(db.embeddings_of("Ann"), vectors_for("Ann", 2))
        for write in (
            lambda: db.enroll("Bob", vectors_for("Bob", 1)),
            lambda: db.remove("Ann"),
            lambda: db.set_threshold(0.5),
            lambda: db.log("cam", "accept", 0.1, "Ann"),
        ):
            with pytest.raises(ValueError, match=r"opened read-only .*: changing it needs write access"):
                write()
    with FaceDB.open(path) as db:
        assert db.people()[0].n_embeddings == 2


def test_writer_waits_for_another_writer_instead_of_failing(tmp_path: Path, db: FaceDB):
    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock for 0.5 s
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    start = time.monotonic()
    db.log("cam", "reject", 1.5)  # waits (busy_timeout) rather than raising "database is locked"
    waited = time.monotonic() - start
    release.join()
    assert waited >= 0.4
    assert db.events(1)[0].decision == "reject"
