"""The gallery's SQLite schema, the statements FaceDB runs, and opening and creating the file."""


from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgepipe.apps.face.gallery.store import Statements, first_meta
from edgepipe.apps.face.gallery.values import EncoderId
from edgepipe.postprocess.errors import UserError

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


SQLITE = Statements(
    person_add="INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)",
    person_id="SELECT id FROM people WHERE name = ?",
    names="SELECT name FROM people ORDER BY id",
    person=("SELECT p.name, COUNT(e.id), p.created FROM people p"
            " LEFT JOIN embeddings e ON e.person_id = p.id WHERE p.id = ? GROUP BY p.id"),
    people=("SELECT p.name, COUNT(e.id), p.created FROM people p"
            " LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.id"),
    person_delete="DELETE FROM people WHERE id = ?",
    person_delete_name="DELETE FROM people WHERE name = ?",
    embedding_add="INSERT INTO embeddings (person_id, vector, crop, source, created) VALUES (?, ?, ?, ?, ?)",
    vectors_of="SELECT vector FROM embeddings WHERE person_id = ? ORDER BY id",
    matrix_people="SELECT id, name FROM people ORDER BY id",
    matrix_rows="SELECT person_id, vector FROM embeddings ORDER BY person_id, id",
    export_people="SELECT id, name, created FROM people ORDER BY id",
    export_rows="SELECT person_id, vector, crop, source, created FROM embeddings ORDER BY person_id, id",
    crops="SELECT e.id, p.name, e.crop FROM embeddings e JOIN people p ON p.id = e.person_id ORDER BY p.id, e.id",
    vector_set="UPDATE embeddings SET vector = ? WHERE id = ?",
    event_add="INSERT INTO events (time, source, decision, distance, name) VALUES (?, ?, ?, ?, ?)",
    events="SELECT time, source, decision, distance, name FROM events ORDER BY id DESC LIMIT ?",
    meta="SELECT key, value FROM meta",
    meta_put="INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
    threshold_clear="DELETE FROM meta WHERE key LIKE 'threshold%'",
    generation="SELECT value FROM meta WHERE key = 'generation'",
)


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
    """A connection in autocommit mode (transactions are explicit), foreign keys on, busy timeout set. Read-only
    in a folder this process cannot write (a read-only disk), the file is opened as immutable: SQLite then needs
    no lock files beside it, and nobody can be writing it there."""
    mode = "ro" if readonly else "rwc"
    immutable = "&immutable=1" if readonly and not os.access(path.parent, os.W_OK) else ""
    uri = f"{path.resolve().as_uri()}?mode={mode}{immutable}"
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
        return dict(conn.execute(SQLITE.meta).fetchall())


def create_schema(conn: sqlite3.Connection, path: Path, encoder: EncoderId | None) -> dict[str, Any]:
    """Create the schema in an empty database (unless another process just did). Returns the meta table."""
    meta = first_meta(str(path), encoder)
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        raise UserError(f"gallery {path} could not be switched to WAL mode: put it on a local file system")
    with transaction(conn, "BEGIN IMMEDIATE"):
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.executemany(SQLITE.meta_put, list(meta.items()))
    return read_meta(conn, path)


def bump_generation(conn: sqlite3.Connection) -> None:
    """Mark the embeddings as changed: every FaceDB's cached matrix() is rebuilt on its next call."""
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
