"""The gallery's SQLite schema and the statements FaceDB runs inside its transactions."""


from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from edgepipe.apps.face.gallery.transfer import ExportedPerson
from edgepipe.apps.face.gallery.values import (
    SCHEMA_VERSION,
    DecisionThreshold,
    EncoderId,
    Person,
)
from edgepipe.postprocess.errors import UserError

# A writer waits this long for another process's write transaction before SQLite reports "database is locked"
# (sqlite3.connect's timeout sets sqlite3_busy_timeout, i.e. PRAGMA busy_timeout = 10000).
BUSY_TIMEOUT_S = 10.0


# A writer waits this long for another process's write transaction before SQLite reports "database is locked"
# (sqlite3.connect's timeout sets sqlite3_busy_timeout, i.e. PRAGMA busy_timeout = 10000).
BUSY_TIMEOUT_S = 10.0


SQLITE_MAGIC = b"SQLite format 3\x00"


SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value NOT NULL)",
    "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL)",
    # vector: D float32 little-endian; crop: the face crop as PNG bytes, NULL when not kept.
    "CREATE TABLE embeddings (id INTEGER PRIMARY KEY,"
    " person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,"
    " vector BLOB NOT NULL, crop BLOB, source TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX embeddings_person ON embeddings(person_id)",
    # name is text, not a foreign key: the audit log outlives removed people. distance is NULL for enroll/remove.
    "CREATE TABLE events (id INTEGER PRIMARY KEY, time REAL NOT NULL, source TEXT NOT NULL,"
    " decision TEXT NOT NULL, distance REAL, name TEXT NOT NULL)",
)


THRESHOLD_KEYS = ("threshold", "threshold_far", "threshold_eer", "threshold_when")


def vector_blob(v: np.ndarray) -> bytes:
    """v: (D,) float32. Returns its 4 * D bytes, little-endian."""
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


@contextmanager
def transaction(conn: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Connection]:
    """begin: "BEGIN" (a consistent read snapshot) or "BEGIN IMMEDIATE" (take the write lock now). Commits on
    success, rolls back on any exception: all or nothing."""
    conn.execute(begin)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors (disk full, I/O)
            conn.execute("ROLLBACK")
        raise


def check_gallery_path(path: Path, may_create: bool) -> None:
    """Raise unless path is an SQLite file, or an empty or missing one that may be created."""
    if path.is_dir():
        raise UserError(f"gallery path {path} is a folder: pass a file such as {path / 'faces.db'}")
    if not path.exists():
        if not may_create:
            raise UserError(f"no face gallery at {path}: check the path")
        if not path.parent.is_dir():
            raise UserError(f"cannot create gallery {path}: folder {path.parent} does not exist")
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head and head != SQLITE_MAGIC:
        raise UserError(
            f"{path} is not a face gallery: not an SQLite database (it starts with {head!r}); check the path"
        )


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), foreign keys on, busy timeout set."""
    uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The meta table as a dict; {} for an empty database; UserError for a database that is not a gallery."""
    with transaction(conn, "BEGIN"):
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "meta" not in tables:
            if tables:
                raise UserError(
                    f"{path} is an SQLite database but not a face gallery (tables {sorted(tables)}, no meta): "
                    "check the path"
                )
            return {}
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def create_schema(conn: sqlite3.Connection, path: Path, encoder: EncoderId | None) -> dict[str, Any]:
    """Create the schema in an empty database (unless another process just did). Returns the meta table."""
    if encoder is None:
        raise UserError(
            f"creating gallery {path} needs the encoder: pass encoder=EncoderId.of_file(model, embedding_size)"
        )
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        raise UserError(f"gallery {path} could not be switched to WAL mode: put it on a local file system")
    with transaction(conn, "BEGIN IMMEDIATE"):
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            for statement in SCHEMA:
                conn.execute(statement)
            meta = {"schema_version": SCHEMA_VERSION, "generation": 0, "created": time.time()}
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
            write_encoder(conn, encoder)
    return read_meta(conn, path)


def write_encoder(conn: sqlite3.Connection, encoder: EncoderId) -> None:
    values = {"encoder_sha256": encoder.sha256, "encoder_size": encoder.embedding_size, "encoder_name": encoder.name}
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


def stored_encoder(meta: dict[str, Any], path: Path) -> EncoderId:
    """The encoder recorded in a gallery's meta table (schema version already checked)."""
    try:
        return EncoderId(meta["encoder_sha256"], int(meta["encoder_size"]), meta["encoder_name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"gallery {path} is damaged: its meta table lacks a valid encoder ({exc})") from exc


def read_generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def bump_generation(conn: sqlite3.Connection) -> None:
    """Mark the embeddings as changed: every FaceDB's cached matrix() is rebuilt on its next call."""
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")


def insert_event(
    conn: sqlite3.Connection, source: str, decision: str, distance: float | None, name: str, when: float
) -> None:
    conn.execute(
        "INSERT INTO events (time, source, decision, distance, name) VALUES (?, ?, ?, ?, ?)",
        (when, source, decision, distance, name),
    )


def insert_embeddings(
    conn: sqlite3.Connection, person_id: int, vectors: np.ndarray, extras: Sequence[tuple[bytes | None, str, float]]
) -> None:
    """vectors: (K, D) float32; extras: K (crop as PNG bytes or None, source, created)."""
    conn.executemany(
        "INSERT INTO embeddings (person_id, vector, crop, source, created) VALUES (?, ?, ?, ?, ?)",
        [(person_id, vector_blob(v), *extra) for v, extra in zip(vectors, extras, strict=True)],
    )


def read_person(conn: sqlite3.Connection, person_id: int) -> Person:
    name, n, created = conn.execute(
        "SELECT p.name, COUNT(e.id), p.created FROM people p LEFT JOIN embeddings e ON e.person_id = p.id"
        " WHERE p.id = ? GROUP BY p.id",
        (person_id,),
    ).fetchone()
    return Person(name, n, created)


def read_threshold(conn: sqlite3.Connection) -> DecisionThreshold | None:
    """The stored threshold, or None when none was set."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)", THRESHOLD_KEYS).fetchall())
    if "threshold" not in meta:
        return None
    return DecisionThreshold(
        meta["threshold"], meta.get("threshold_far"), meta.get("threshold_eer"), meta["threshold_when"]
    )


def write_threshold(conn: sqlite3.Connection, t: DecisionThreshold) -> None:
    conn.execute("DELETE FROM meta WHERE key IN (?, ?, ?, ?)", THRESHOLD_KEYS)
    values = zip(THRESHOLD_KEYS, (t.value, t.far, t.eer, t.when), strict=True)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, v) for k, v in values if v is not None])


def import_person(conn: sqlite3.Connection, person: ExportedPerson, source: str) -> Person:
    """Insert one exported person (replacing one of the same name) inside the caller's transaction."""
    conn.execute("DELETE FROM people WHERE name = ?", (person.name,))  # their embeddings: ON DELETE CASCADE
    person_id = conn.execute(
        "INSERT INTO people (name, created) VALUES (?, ?)", (person.name, person.created)
    ).lastrowid
    insert_embeddings(conn, person_id, person.vectors, person.extras)
    insert_event(conn, source, "import", None, person.name, time.time())
    return read_person(conn, person_id)
