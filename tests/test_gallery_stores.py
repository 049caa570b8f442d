"""The same guarantees from both gallery stores, SQLite and PostgreSQL (a real throwaway server): people and their
exact embeddings, the matrix against brute force and its cache, the threshold, the audit log, re-encoding all or
nothing, the encoder and schema checks, and moving a gallery from one store to the other and back."""

import json
from pathlib import Path

import numpy as np
import psycopg
import pytest

from edgepipe.apps.face.gallery import EncoderId, GalleryStore, open_gallery
from edgepipe.postprocess.embeddings import identify
from tests.gallery_data import D, crops_for, make_encoder, vectors_for
from tests.test_gallery_transfer import embed_crops


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path: Path) -> str:
    """Where a new gallery goes: an SQLite file, or an empty database on the test PostgreSQL server."""
    return str(tmp_path / "g.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def store(location: str, encoder: EncoderId):
    with open_gallery(location, encoder) as opened:
        yield opened


def fill(db: GalleryStore) -> None:
    db.enroll("Ann", vectors_for("Ann", 3), crops_for("Ann", 3), source="desk")
    db.enroll("Bob", vectors_for("Bob", 1))
    db.enroll("Zoë", vectors_for("Zoë", 2), crops_for("Zoë", 2))
    db.enroll("Bob", vectors_for("Bob again", 2), crops_for("Bob again", 2))
    db.set_threshold(0.75, far=1e-3, eer=0.02)


def test_people_and_their_exact_embeddings(store: GalleryStore):
    fill(store)
    assert [(p.name, p.n_embeddings) for p in store.people()] == [("Ann", 3), ("Bob", 3), ("Zoë", 2)]
    assert np.array_equal(store.embeddings_of("Bob"), np.concatenate([vectors_for("Bob", 1),
                                                                      vectors_for("Bob again", 2)]))
    assert np.array_equal(store.embeddings_of("Zoe\u0308"), vectors_for("Zoë", 2))  # the name is NFC-normalised
    with pytest.raises(ValueError, match=r"no person named 'Anne' .*close names: 'Ann'"):
        store.remove("Anne")
    assert store.remove("Ann", source="desk") == 3
    assert [p.name for p in store.people()] == ["Bob", "Zoë"]
    entries = [(e.decision, e.name, e.source) for e in store.events(limit=6)]
    assert entries == [("remove", "Ann", "desk"), ("enroll", "Bob", ""), ("enroll", "Zoë", ""),
                       ("enroll", "Bob", ""), ("enroll", "Ann", "desk")]


def test_matrix_matches_brute_force_and_is_cached_until_another_connection_changes_it(
    store: GalleryStore, location: str, encoder: EncoderId
):
    fill(store)
    m = store.matrix()
    assert m.names == ("Ann", "Bob", "Zoë") and m.person_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    queries = np.random.default_rng(0).normal(size=(20, D)).astype(np.float32) * 3
    for q, found in zip(queries, identify(queries, m.gallery, m.labels, threshold=30.0), strict=True):
        d = ((m.embeddings.astype(np.float64) - q) ** 2).sum(axis=1)
        assert found.distance == pytest.approx(d.min(), rel=1e-5)
        assert found.label == (m.names[m.person_ids[d.argmin()]] if d.min() <= 30.0 else "unknown")
    assert store.matrix() is m  # nothing changed
    store.log("kiosk", "welcome", 0.1, "Ann")
    assert store.matrix() is m  # the audit log does not touch the embeddings
    with open_gallery(location, encoder) as desk:
        desk.remove("Bob")
    assert store.matrix().names == ("Ann", "Zoë")


def test_threshold_and_audit_log_across_connections(store: GalleryStore, location: str):
    with pytest.raises(ValueError, match="no decision threshold yet"):
        _ = store.threshold
    store.set_threshold(np.float32(0.5), far=0.01)
    store.log("door", "unknown", float("inf"))
    with open_gallery(location) as other:
        t = other.decision_threshold
        assert (t.value, t.far, t.eer) == (0.5, 0.01, None)
        (entry,) = other.events(limit=1)
        assert (entry.source, entry.decision, entry.distance, entry.name) == ("door", "unknown", float("inf"), "")
    with pytest.raises(ValueError, match="distance must be a number >= 0"):
        store.log("door", "unknown", -1.0)


def test_the_encoder_is_checked_on_open(store: GalleryStore, location: str, encoder: EncoderId, tmp_path: Path):
    fill(store)
    other = make_encoder(tmp_path, b"another model", size=32, file="other.onnx")
    with pytest.raises(ValueError, match=r"enrolled with encoder enc.onnx .*model is other.onnx .*32-d.*--reencode"):
        open_gallery(location, other)
    with open_gallery(location) as stored:  # no encoder given: the stored one
        assert stored.encoder == encoder


def test_reencode_is_one_transaction(store: GalleryStore, location: str, encoder: EncoderId, tmp_path: Path):
    fill(store)
    new = make_encoder(tmp_path, b"encoder two", file="enc2.onnx")
    with pytest.raises(ValueError, match=r"no stored face crops for Bob"):
        store.reencode(embed_crops, new)  # Bob's first embedding has no crop
    assert np.array_equal(store.embeddings_of("Ann"), vectors_for("Ann", 3))  # nothing changed
    store.remove("Bob")
    assert store.reencode(embed_crops, new) == 5
    assert np.array_equal(store.embeddings_of("Ann"), embed_crops(crops_for("Ann", 3)))
    with pytest.raises(ValueError, match=r"enrolled with encoder enc2.onnx"):
        open_gallery(location, encoder)


def test_a_gallery_moves_between_the_stores_and_back_unchanged(
    store: GalleryStore, location: str, encoder: EncoderId, tmp_path: Path, request
):
    """SQLite -> PostgreSQL -> SQLite, or PostgreSQL -> SQLite -> PostgreSQL: every person, embedding, crop, time,
    the threshold and the encoder identity survive; the export files are identical."""
    fill(store)
    first = tmp_path / "first.json"
    store.export_json(first)
    other = str(tmp_path / "moved.db") if location.startswith("postgresql") else request.getfixturevalue("pg_url")
    with open_gallery(other, encoder) as moved:
        assert [p.name for p in moved.import_json(first)] == ["Ann", "Bob", "Zoë"]
        moved.export_json(tmp_path / "second.json")
        assert moved.encoder == store.encoder
        assert np.array_equal(moved.matrix().embeddings, store.matrix().embeddings)
    assert json.loads(first.read_text()) == json.loads((tmp_path / "second.json").read_text())
    doc = json.loads(first.read_text())
    assert doc["encoder"] == {"sha256": encoder.sha256, "embedding_size": D, "name": "enc.onnx"}
    assert sum(e["crop_png"] is not None for p in doc["people"] for e in p["embeddings"]) == 7


def test_postgres_schema_is_created_on_first_use_with_its_version(pg_url: str, encoder: EncoderId):
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('face_gallery.meta')").fetchone()[0] is None
    open_gallery(pg_url, encoder).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        meta = dict(conn.execute("SELECT key, value FROM face_gallery.meta").fetchall())
        assert (meta["schema_version"], meta["generation"], meta["encoder_sha256"]) == (1, 0, encoder.sha256)
        conn.execute("UPDATE face_gallery.meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match=r"schema version 2, newer than this edgepipe reads \(1\): upgrade edgepipe"):
        open_gallery(pg_url)


def test_postgres_refuses_a_missing_gallery_without_creating_it(pg_url: str):
    with pytest.raises(ValueError, match=r"no face gallery in postgresql://edgepipe@127.0.0.1:\d+/gallery_"):
        open_gallery(pg_url, create=False)
    with pytest.raises(ValueError, match=r"creating gallery .* needs the encoder"):
        open_gallery(pg_url)
