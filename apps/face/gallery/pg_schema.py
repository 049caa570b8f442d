"""The gallery's PostgreSQL schema (tables in the face_gallery schema of the database), the statements
PostgresGallery runs, the change log and the notification channel that kiosks follow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from edgepipe.apps.face.gallery.store import Statements, first_meta
from edgepipe.apps.face.gallery.values import EncoderId

CHANNEL = "face_gallery"  # NOTIFY channel: the payload is the new generation
CHANGES_KEPT = 10_000  # generations kept in the change log: a kiosk further behind reloads the whole gallery
CREATE_LOCK = 0x65646765_66616365  # pg_advisory_xact_lock key: one process creates the schema


SCHEMA = (
    "CREATE SCHEMA IF NOT EXISTS face_gallery",
    "CREATE TABLE face_gallery.meta (key TEXT PRIMARY KEY, value JSONB NOT NULL)",
    "CREATE TABLE face_gallery.people (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE, created DOUBLE PRECISION NOT NULL)",
    # vector: D float32 little-endian; crop: the face crop as PNG bytes, NULL when not kept.
    "CREATE TABLE face_gallery.embeddings (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " person_id BIGINT NOT NULL REFERENCES face_gallery.people(id) ON DELETE CASCADE,"
    " vector BYTEA NOT NULL, crop BYTEA, source TEXT NOT NULL, created DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX embeddings_person ON face_gallery.embeddings (person_id)",
    # name is text, not a foreign key: the audit log outlives removed people. distance is NULL for enroll/remove.
    "CREATE TABLE face_gallery.events (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " time DOUBLE PRECISION NOT NULL, source TEXT NOT NULL, decision TEXT NOT NULL, distance DOUBLE PRECISION,"
    " name TEXT NOT NULL)",
    # One row per person whose embeddings a generation changed; name NULL: everyone's (a re-encode).
    "CREATE TABLE face_gallery.changes (generation BIGINT NOT NULL, name TEXT)",
    "CREATE INDEX changes_generation ON face_gallery.changes (generation)",
)


POSTGRES = Statements(
    person_add="INSERT INTO face_gallery.people (name, created) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
    person_id="SELECT id FROM face_gallery.people WHERE name = %s",
    names="SELECT name FROM face_gallery.people ORDER BY id",
    person=("SELECT p.name, COUNT(e.id), p.created FROM face_gallery.people p"
            " LEFT JOIN face_gallery.embeddings e ON e.person_id = p.id WHERE p.id = %s GROUP BY p.id"),
    people=("SELECT p.name, COUNT(e.id), p.created FROM face_gallery.people p"
            " LEFT JOIN face_gallery.embeddings e ON e.person_id = p.id GROUP BY p.id ORDER BY p.id"),
    person_delete="DELETE FROM face_gallery.people WHERE id = %s",
    person_delete_name="DELETE FROM face_gallery.people WHERE name = %s",
    embedding_add="INSERT INTO face_gallery.embeddings (person_id, vector, crop, source, created)"
    " VALUES (%s, %s, %s, %s, %s)",
    vectors_of="SELECT vector FROM face_gallery.embeddings WHERE person_id = %s ORDER BY id",
    matrix_people="SELECT id, name FROM face_gallery.people ORDER BY id",
    matrix_rows="SELECT person_id, vector FROM face_gallery.embeddings ORDER BY person_id, id",
    export_people="SELECT id, name, created FROM face_gallery.people ORDER BY id",
    export_rows="SELECT person_id, vector, crop, source, created FROM face_gallery.embeddings"
    " ORDER BY person_id, id",
    crops="SELECT e.id, p.name, e.crop FROM face_gallery.embeddings e"
    " JOIN face_gallery.people p ON p.id = e.person_id ORDER BY p.id, e.id",
    vector_set="UPDATE face_gallery.embeddings SET vector = %s WHERE id = %s",
    event_add="INSERT INTO face_gallery.events (time, source, decision, distance, name) VALUES (%s, %s, %s, %s, %s)",
    events="SELECT time, source, decision, distance, name FROM face_gallery.events ORDER BY id DESC LIMIT %s",
    meta="SELECT key, value FROM face_gallery.meta",
    meta_put="INSERT INTO face_gallery.meta (key, value) VALUES (%s, %s)"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
    threshold_clear="DELETE FROM face_gallery.meta WHERE key LIKE 'threshold%'",
    generation="SELECT (value #>> '{}')::bigint FROM face_gallery.meta WHERE key = 'generation'",
)

# The write lock every change takes first (one writer at a time, like SQLite's BEGIN IMMEDIATE; writers queue on
# the row instead of deadlocking on each other's rows).
WRITE_LOCK = "SELECT value FROM face_gallery.meta WHERE key = 'generation' FOR UPDATE"
READ_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
BUMP = ("UPDATE face_gallery.meta SET value = to_jsonb((value #>> '{}')::bigint + 1) WHERE key = 'generation'"
        " RETURNING (value #>> '{}')::bigint")
CHANGE_ADD = "INSERT INTO face_gallery.changes (generation, name) VALUES (%s, %s)"
CHANGES_PRUNE = "DELETE FROM face_gallery.changes WHERE generation <= %s"
NOTIFY = "SELECT pg_notify(%s, %s)"
LISTEN = "LISTEN face_gallery"  # the CHANNEL
CHANGES_SINCE = "SELECT generation, name FROM face_gallery.changes WHERE generation > %s ORDER BY generation"
COUNT_ROWS = "SELECT COUNT(*) FROM face_gallery.embeddings"
# A page of the matrix: after embedding id %s, the next %s rows, as (count, last id, the rows' int8send(person_id)
# || int8send(id) || vector joined in one bytea, in any order: the follower sorts them).
MATRIX_PAGE = ("SELECT COUNT(*), MAX(id), string_agg(int8send(person_id) || int8send(id) || vector, ''::bytea)"
               " FROM (SELECT person_id, id, vector FROM face_gallery.embeddings WHERE id > %s"
               " ORDER BY id LIMIT %s) page")
ROWS_OF_NAMES = ("SELECT p.id, p.name, e.id, e.vector FROM face_gallery.people p"
                 " JOIN face_gallery.embeddings e ON e.person_id = p.id WHERE p.name = ANY(%s) ORDER BY p.id, e.id")
PEOPLE_OF_NAMES = "SELECT id, name FROM face_gallery.people WHERE name = ANY(%s) ORDER BY id"
GALLERY_TABLE = "SELECT to_regclass('face_gallery.meta') IS NOT NULL"
DROP_EMPTY = "DROP SCHEMA face_gallery CASCADE"


def read_meta(conn: psycopg.Connection) -> dict[str, Any]:
    """The meta table as a dict; {} when the database holds no gallery yet."""
    with conn.transaction():
        if not conn.execute(GALLERY_TABLE).fetchone()[0]:
            return {}
        return dict(conn.execute(POSTGRES.meta).fetchall())


def create_schema(conn: psycopg.Connection, where: str, encoder: EncoderId | None) -> dict[str, Any]:
    """Create the schema in a database without a gallery (unless another process just did). Returns the meta."""
    meta = first_meta(where, encoder)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (CREATE_LOCK,))
        if not conn.execute(GALLERY_TABLE).fetchone()[0]:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.cursor().executemany(POSTGRES.meta_put, [(k, Jsonb(v)) for k, v in meta.items()])
    return read_meta(conn)


def bump_generation(conn: psycopg.Connection, names: Sequence[str] | None) -> int:
    """Inside a write: the next generation, the names it changed (None: everyone) in the change log, the log's
    oldest generations pruned, and a notification to the kiosks (sent when the transaction commits)."""
    generation = conn.execute(BUMP).fetchone()[0]
    rows: list[tuple[int, str | None]] = [(generation, n) for n in names] if names is not None else []
    conn.cursor().executemany(CHANGE_ADD, rows or [(generation, None)])
    conn.execute(CHANGES_PRUNE, (generation - CHANGES_KEPT,))
    conn.execute(NOTIFY, (CHANNEL, str(generation)))
    return generation
