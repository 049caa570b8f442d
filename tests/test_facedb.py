"""The face gallery (apps/face/gallery/) on real SQLite files: validation, encoder and schema checks, export/import,
re-encoding, and durability under SIGKILL and concurrent processes."""

import ast
import base64
import hashlib
import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import unicodedata
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import SCHEMA_VERSION, EncoderId, FaceDB, check_name
from edgepipe.postprocess.embeddings import identify
from edgepipe.postprocess.errors import UserError

REPO = Path(__file__).resolve().parents[1]
D = 16  # embedding size of the fake encoder


def vectors_for(name: str, k: int) -> np.ndarray:
    """(k, D) float32, not unit length, a function of name only: what a test enrolls for that name."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    return (3.0 * rng.standard_normal((k, D))).astype(np.float32)


def crops_for(name: str, k: int) -> list[np.ndarray]:
    """k random (20, 24, 3) uint8 face crops, a function of name only."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")) + 1)
    return [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(k)]


def k_of(name: str) -> int:
    """The embedding count enroll_loop encodes in a name: 'prefix-i-kK' -> K."""
    return int(name.rsplit("-k", 1)[1])


def make_encoder(folder: Path, content: bytes, size: int = D, file: str = "enc.onnx") -> EncoderId:
    model = folder / file
    model.write_bytes(content)
    return EncoderId.of_file(model, size)


@pytest.fixture
def encoder(tmp_path: Path) -> EncoderId:
    return make_encoder(tmp_path, b"encoder one: stands in for ONNX bytes")


@pytest.fixture
def db(tmp_path: Path, encoder: EncoderId):
    with FaceDB.open(tmp_path / "gallery.db", encoder) as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of FaceDB, to look at the file."""
    return sqlite3.connect(path, isolation_level=None)


# ---------------------------------------------------------------- child processes (run with sys.executable -c)


def enroll_loop(path: str, sha: str, prefix: str, n: int, pause_s: float = 0.0) -> None:
    """Enroll n people named prefix-i-kK with K = 1 + i % 7 embeddings (and crops) each, one transaction each,
    pause_s apart."""
    with FaceDB.open(path, EncoderId(sha, D, "enc.onnx")) as db:
        print("ready", flush=True)
        for i in range(n):
            name = f"{prefix}-{i}-k{1 + i % 7}"
            db.enroll(name, vectors_for(name, k_of(name)), crops_for(name, k_of(name)), source="enroller")
            time.sleep(pause_s)
    print(n, flush=True)


def kiosk_loop(path: str, sha: str, until_people: int, deadline_s: float, frame_s: float) -> None:
    """Identify the newest person's first embedding and log the decision, one frame every frame_s, until until_people
    are enrolled. Checks every snapshot is whole (rows = the sum of the K in the names). Prints the (people, rows)
    seen."""
    seen: list[tuple[int, int]] = []
    end = time.monotonic() + deadline_s
    with FaceDB.open(path, EncoderId(sha, D, "enc.onnx")) as db:
        print("ready", flush=True)
        while (not seen or seen[-1][0] < until_people) and time.monotonic() < end:
            m = db.matrix()
            if len(m.embeddings) != sum(k_of(n) for n in m.names):
                raise SystemExit(f"half-written snapshot: {len(m.embeddings)} rows for {m.names}")
            if m.names:
                result = identify(vectors_for(m.names[-1], 1), m.gallery, m.labels, threshold=0.0)[0]
                if (result.label, result.distance) != (m.names[-1], 0.0):
                    raise SystemExit(f"identified {result.label} at {result.distance}, expected {m.names[-1]} at 0")
                db.log("kiosk", "accept", result.distance, result.label)
            seen.append((len(m.names), len(m.embeddings)))
            time.sleep(frame_s)
    print(json.dumps(seen), flush=True)


def start_child(call: str) -> subprocess.Popen:
    """Run `from tests.test_facedb import ...; call` in a new interpreter at the repo root; waits for 'ready'."""
    code = f"from tests.test_facedb import enroll_loop, kiosk_loop; {call}"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {line!r} {proc.communicate()[1]}")
    return proc


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
            with pytest.raises(ValueError, match="opened read-only: open it with readonly=False"):
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


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "Ann",
        "José Ñúñez",  # accents
        "李小龙",  # CJK
        "प्रिया",  # Devanagari: vowel signs are combining marks
        "O'Brien-Smith Jr.",  # every allowed punctuation but _
        "agent_007",
        "A" * 64,  # the longest allowed
    ],
)
def test_valid_names_round_trip(db: FaceDB, name: str):
    assert check_name(name) == name
    assert db.enroll(name, vectors_for(name, 1)).name == name
    assert [p.name for p in db.people()] == [name]


def test_names_are_stored_in_nfc(db: FaceDB):
    decomposed = unicodedata.normalize("NFD", "Zoë")
    assert len(decomposed) == 4
    db.enroll(decomposed, vectors_for("Zoë", 1))
    assert [p.name for p in db.people()] == ["Zoë"]
    assert db.remove(decomposed) == 1  # found under either form


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "got 0 characters"),  # empty
        ("A" * 65, "got 65 characters"),  # too long
        (" Ann", "remove the outer spaces"),  # leading space
        ("Ann ", "remove the outer spaces"),  # trailing space
        ("a/b", "character '/' at 1"),
        ("Bob; DROP TABLE people", "character ';' at 3"),
        ("tab\there", r"character '\\t' at 3"),
        ("smile 😀", "at 6"),  # emoji
        (42, "must be a string"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(db: FaceDB, name, problem: str):
    with pytest.raises(ValueError, match=problem) as info:
        db.enroll(name, vectors_for("x", 1))
    assert "letters (any script), digits, spaces and - ' . _" in str(info.value)
    assert db.people() == []


def test_names_go_through_parameters_not_sql_text(db: FaceDB):
    db.enroll("O'Brien", vectors_for("O'Brien", 1))
    db.enroll("Ann", vectors_for("Ann", 1))
    with pytest.raises(ValueError, match="no person named"):
        db.remove("x' OR '1'='1")  # lookups take any string: an injection would delete everyone
    with pytest.raises(ValueError, match="no person named"):
        db.embeddings_of("Ann'; DELETE FROM embeddings; --")
    assert [(p.name, p.n_embeddings) for p in db.people()] == [("O'Brien", 1), ("Ann", 1)]


def test_no_sql_is_built_by_string_formatting():
    trees = [ast.parse(path.read_text()) for path in (REPO / "apps" / "face" / "gallery").glob("*.py")]
    calls = [
        node
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("execute")
    ]
    assert len(calls) > 20
    formatted = [c.lineno for c in calls if c.args and isinstance(c.args[0], (ast.JoinedStr, ast.BinOp, ast.Call))]
    assert formatted == []


# ---------------------------------------------------------------- enroll, people, remove, embeddings_of


def test_enroll_stores_embeddings_exactly_as_given(db: FaceDB):
    first, more = vectors_for("Ann", 3), vectors_for("Ann more", 2)
    ann = db.enroll("Ann", first, source="desk")
    assert (ann.name, ann.n_embeddings) == ("Ann", 3)
    again = db.enroll("Ann", more.astype(np.float64))  # float64 in: stored as its float32 values
    assert (again.n_embeddings, again.created) == (5, ann.created)  # added to the same person
    stored = db.embeddings_of("Ann")
    assert stored.dtype == np.float32
    assert np.array_equal(stored, np.concatenate([first, more]))  # bit-exact, not re-normalised
    assert np.linalg.norm(stored, axis=1).max() > 2


@pytest.mark.parametrize(
    ("embeddings", "error"),
    [
        (np.zeros((2, D + 1), np.float32), r"shape \(K, 16\) with K >= 1 .* but got shape \(2, 17\)"),  # wrong D
        (np.zeros((0, D), np.float32), r"but got shape \(0, 16\)"),  # no rows
        (np.zeros(D, np.float32), r"but got shape \(16,\)"),  # one vector, not (1, D)
        (np.zeros((2, D), np.int64), "must be a float array"),
        (np.where(np.arange(2 * D).reshape(2, D) == 20, np.nan, 0.0), r"rows \[1\] hold NaN"),
        (np.full((1, D), 1e39), r"rows \[0\] hold NaN, inf or values beyond 3.4e38"),  # overflows float32
    ],
)
def test_enroll_rejects_bad_embeddings(db: FaceDB, embeddings: np.ndarray, error: str):
    with pytest.raises(ValueError, match=error):
        db.enroll("Ann", embeddings)
    assert db.people() == []


def test_enroll_rejects_bad_crops_and_stores_nothing(db: FaceDB):
    with pytest.raises(ValueError, match=r"one image per embedding \(2\), but got 1"):
        db.enroll("Ann", vectors_for("Ann", 2), crops=crops_for("Ann", 1))
    with pytest.raises(ValueError, match=r"crops\[1\] must be a \(H, W\) gray or \(H, W, 3\) BGR uint8"):
        db.enroll("Ann", vectors_for("Ann", 2), crops=[crops_for("Ann", 1)[0], np.zeros((8, 8, 3), np.float32)])
    assert db.people() == []
    assert raw(db.path).execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0


def test_people_and_remove_with_close_names(db: FaceDB):
    for name, k in (("Alice", 2), ("Alicia", 3), ("Bob", 1)):
        db.enroll(name, vectors_for(name, k), crops_for(name, k))
    assert [(p.name, p.n_embeddings) for p in db.people()] == [("Alice", 2), ("Alicia", 3), ("Bob", 1)]
    with pytest.raises(ValueError, match=r"no person named 'Alic' .*close names: 'Alice', 'Alicia'"):
        db.remove("Alic")
    with pytest.raises(ValueError, match=r"no person named 'Zed' .*no close name among the 3 enrolled"):
        db.embeddings_of("Zed")
    assert db.remove("Alicia") == 3
    assert [p.name for p in db.people()] == ["Alice", "Bob"]
    conn = raw(db.path)  # the cascade (foreign keys on) removed the rows, crops included
    assert conn.execute("SELECT COUNT(*), COUNT(crop) FROM embeddings").fetchone() == (3, 3)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


# ---------------------------------------------------------------- matrix


def test_matrix_of_an_empty_gallery(db: FaceDB):
    m = db.matrix()
    assert (m.embeddings.shape, m.embeddings.dtype) == ((0, D), np.float32)
    assert (m.person_ids.shape, m.person_ids.dtype) == ((0,), np.int64)
    assert m.names == () and m.labels == ()
    assert identify(vectors_for("q", 1), m.gallery, m.labels, 1.0)[0].label == "unknown"


def test_matrix_matches_a_brute_force_identify(db: FaceDB):
    enrolled = [("Ann", 3), ("Bob", 1), ("Cleo", 4), ("Dev", 2)]
    for name, k in enrolled:
        db.enroll(name, vectors_for(name, k))
    db.enroll("Bob", vectors_for("Bob again", 2))  # Bob's rows come after his first ones, before Cleo's
    m = db.matrix()
    expected_rows = [vectors_for("Ann", 3), vectors_for("Bob", 1), vectors_for("Bob again", 2)]
    expected_rows += [vectors_for("Cleo", 4), vectors_for("Dev", 2)]
    assert np.array_equal(m.embeddings, np.concatenate(expected_rows))
    assert m.person_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert m.names == ("Ann", "Bob", "Cleo", "Dev")
    assert not m.embeddings.flags.writeable and not m.person_ids.flags.writeable
    rng = np.random.default_rng(0)
    queries = np.concatenate([m.embeddings + 0.3 * rng.standard_normal(m.embeddings.shape), rng.normal(size=(5, D))])
    results = identify(queries.astype(np.float32), m.gallery, m.labels, threshold=4.0)
    for q, result in zip(queries.astype(np.float32).astype(np.float64), results, strict=True):
        d = ((m.embeddings.astype(np.float64) - q) ** 2).sum(axis=1)  # brute force over the rows
        nearest = int(np.argmin(d))
        assert result.distance == pytest.approx(d[nearest], rel=1e-9)
        assert result.label == (m.names[m.person_ids[nearest]] if d[nearest] <= 4.0 else "unknown")


def test_matrix_is_cached_until_any_connection_changes_the_gallery(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    with FaceDB.open(path, encoder) as kiosk, FaceDB.open(path, encoder) as desk:
        desk.enroll("Ann", vectors_for("Ann", 2))
        first = kiosk.matrix()
        assert kiosk.matrix() is first  # nothing changed: no rebuild
        kiosk.log("kiosk", "accept", 0.0, "Ann")
        kiosk.set_threshold(0.7)
        assert kiosk.matrix() is first  # the audit log and the threshold do not touch the embeddings
        desk.enroll("Bob", vectors_for("Bob", 1))  # another connection enrolls
        second = kiosk.matrix()
        assert second is not first and second.names == ("Ann", "Bob")
        desk.remove("Ann")
        assert kiosk.matrix().names == ("Bob",)
        kiosk.enroll("Cleo", vectors_for("Cleo", 1))  # its own write too
        assert kiosk.matrix().names == ("Bob", "Cleo")


# ---------------------------------------------------------------- threshold and audit log


def test_threshold_with_its_calibration(tmp_path: Path, db: FaceDB):
    with pytest.raises(ValueError, match="no decision threshold yet: calibrate one"):
        _ = db.threshold
    before = time.time()
    db.set_threshold(np.float32(0.75), far=1e-3, eer=0.02)
    with FaceDB.open(db.path) as other:  # stored, not just remembered
        assert other.threshold == pytest.approx(0.75)
        t = other.decision_threshold
        assert (t.far, t.eer) == (1e-3, 0.02) and before <= t.when <= time.time()
    db.set_threshold(0.5)
    assert (db.threshold, db.decision_threshold.far, db.decision_threshold.eer) == (0.5, None, None)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-0.1,), "threshold must be a number >= 0"),
        ((math.nan,), "threshold must be a number >= 0"),
        ((math.inf,), "threshold must be finite"),
        (("0.5",), "threshold must be a number"),
        ((0.5, 1.5), r"far must be a rate in \[0, 1\]"),
        ((0.5, None, -0.1), r"eer must be a rate in \[0, 1\]"),
    ],
)
def test_bad_thresholds(db: FaceDB, args, error: str):
    with pytest.raises(ValueError, match=error):
        db.set_threshold(*args)


def test_audit_log(db: FaceDB):
    db.enroll("Ann", vectors_for("Ann", 1), source="desk")
    db.log("cam0", "accept", 0.25, "Ann")
    db.log("cam1", "unknown", math.inf)  # an empty gallery's distance
    db.remove("Ann", source="desk")
    events = db.events()
    assert [(e.source, e.decision, e.name) for e in events] == [
        ("desk", "remove", "Ann"),
        ("cam1", "unknown", ""),
        ("cam0", "accept", "Ann"),
        ("desk", "enroll", "Ann"),
    ]
    assert [e.distance for e in events[1:3]] == [math.inf, 0.25]
    assert math.isnan(events[0].distance) and math.isnan(events[3].distance)
    assert [e.time for e in events] == sorted((e.time for e in events), reverse=True)
    assert [e.decision for e in db.events(limit=2)] == ["remove", "unknown"]
    for bad, error in ((math.nan, "distance must be a number >= 0"), (-1.0, "distance must be a number >= 0")):
        with pytest.raises(ValueError, match=error):
            db.log("cam0", "accept", bad, "Ann")
    with pytest.raises(ValueError, match="decision must be a non-empty string"):
        db.log("cam0", "", 0.1)
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        db.events(limit=0)


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
        with pytest.raises(ValueError, match=r"already in gallery .*\['Bob'\]; pass replace=True"):
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


# ---------------------------------------------------------------- durability across processes


def test_sigkill_during_enrollment_never_leaves_half_a_person(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    rng = random.Random(7)
    delays = [rng.uniform(0.05, 0.6) for _ in range(5)]
    counts = []
    for round_, delay in enumerate(delays):
        child = start_child(f"enroll_loop({str(path)!r}, {encoder.sha256!r}, 'r{round_}', 10**6)")
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        conn = raw(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
        with FaceDB.open(path, encoder) as db:
            people = db.people()
            for person in people:
                assert person.n_embeddings == k_of(person.name), f"round {round_}, delay {delay:.2f} s"
                assert np.array_equal(db.embeddings_of(person.name), vectors_for(person.name, k_of(person.name)))
            enrolled = {e.name for e in db.events(limit=10**6) if e.decision == "enroll"}
            assert enrolled == {p.name for p in people}  # the audit entry is in the same transaction
        counts.append(len(people))
    assert counts == sorted(counts) and counts[-1] > 2 * len(delays)  # the children did enroll between kills


def test_kiosk_identifies_while_another_process_enrolls(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    n = 120
    # A frame every 10 ms and an enrollment every 10 ms, both far faster than a camera and an operator. With no
    # pause at all, one writer that re-takes the lock at once keeps the other waiting for seconds (SQLite's busy
    # handler polls with sleeps of up to 100 ms, it does not queue).
    kiosk = start_child(f"kiosk_loop({str(path)!r}, {encoder.sha256!r}, {n}, 60.0, frame_s=0.01)")
    writer = start_child(f"enroll_loop({str(path)!r}, {encoder.sha256!r}, 'w', {n}, pause_s=0.01)")
    w_out, w_err = writer.communicate(timeout=90)
    k_out, k_err = kiosk.communicate(timeout=90)
    assert (writer.returncode, w_err) == (0, "")
    assert (kiosk.returncode, k_err) == (0, ""), k_err  # no "database is locked", no half-written snapshot
    assert w_out.split() == [str(n)]
    seen = [tuple(s) for s in json.loads(k_out)]
    assert seen == sorted(seen)  # people and rows only grow
    assert seen[-1] == (n, sum(1 + i % 7 for i in range(n)))
    assert len(set(seen)) > 5  # the kiosk really ran while the enrollments happened
    with FaceDB.open(path, encoder) as db:
        assert len([e for e in db.events(limit=10**6) if e.decision == "accept"]) > 5
