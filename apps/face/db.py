"""The face kiosk's durable gallery: people, embeddings, face crops, threshold and audit log in one SQLite file."""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import math
import os
import sqlite3
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepipe.postprocess.embeddings import Gallery
from edgepipe.postprocess.errors import UserError

SCHEMA_VERSION = 1
EXPORT_FORMAT = "edgepipe-face-gallery"
# A writer waits this long for another process's write transaction before SQLite reports "database is locked"
# (sqlite3.connect's timeout sets sqlite3_busy_timeout, i.e. PRAGMA busy_timeout = 10000).
BUSY_TIMEOUT_S = 10.0
NAME_MAX = 64
NAME_PUNCTUATION = " -'._"
NAME_RULE = (
    f"1 to {NAME_MAX} characters: letters (any script), digits, spaces and - ' . _, with no leading or trailing space"
)
SQLITE_MAGIC = b"SQLite format 3\x00"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHA_SHOWN = 12  # hex digits of an encoder's sha256 shown in messages

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


@dataclass(frozen=True)
class EncoderId:
    """The encoder that made a gallery's embeddings: sha256 of its ONNX bytes (64 hex digits), its embedding size D
    and a readable name (the model's file name)."""

    sha256: str
    embedding_size: int
    name: str

    def __post_init__(self) -> None:
        is_hex = isinstance(self.sha256, str) and set(self.sha256) <= set("0123456789abcdef")
        if not (is_hex and len(self.sha256) == 64):
            raise UserError(
                f"sha256 must be 64 lowercase hex digits, but got {self.sha256!r}: "
                "use EncoderId.of_file(model_path, embedding_size)"
            )
        _check_positive_int(self.embedding_size, "embedding_size")
        if not (isinstance(self.name, str) and self.name):
            raise UserError(f"name must be a non-empty string (the model's file name), but got {self.name!r}")

    @classmethod
    def of_file(cls, path: str | os.PathLike, embedding_size: int) -> EncoderId:
        """The identity of the ONNX encoder at path, whose embeddings have embedding_size dimensions."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"encoder model {path} not found: pass the .onnx file that makes the embeddings")
        return cls(hashlib.sha256(path.read_bytes()).hexdigest(), embedding_size, path.name)

    def describe(self) -> str:
        """'NAME (sha256 abc123..., 128-d)'."""
        return f"{self.name} (sha256 {self.sha256[:SHA_SHOWN]}..., {self.embedding_size}-d)"


@dataclass(frozen=True)
class Person:
    """An enrolled person: name, how many embeddings they have, when they were first enrolled (Unix seconds)."""

    name: str
    n_embeddings: int
    created: float


@dataclass(frozen=True)
class Event:
    """One audit-log entry: time (Unix seconds), source (camera, operator), decision, best distance (nan for
    enroll / remove / import, inf when the gallery was empty) and the person's name ("" when none)."""

    time: float
    source: str
    decision: str
    distance: float
    name: str


@dataclass(frozen=True)
class DecisionThreshold:
    """The gallery's decision threshold (accept when distance <= value) and its calibration: the false-accept and
    equal error rates measured for it (None when not given) and when it was set (Unix seconds)."""

    value: float
    far: float | None
    eer: float | None
    when: float


@dataclass(frozen=True, eq=False)
class Enrolled:
    """The gallery as arrays for postprocess.identify: one row per stored embedding, people in enrollment order.

    embeddings: (N, D) float32, read-only (N may be 0). person_ids: (N,) int64, read-only, each row's index into
    names. names: (P,) the people's names. Built from them: gallery, a postprocess Gallery of the embeddings (its
    array is embeddings, not a copy), and labels, (N,) each row's name: identify(q, e.gallery, e.labels, t).
    """

    embeddings: np.ndarray
    person_ids: np.ndarray
    names: tuple[str, ...]
    gallery: Gallery = field(init=False, repr=False)
    labels: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        gallery = Gallery(self.embeddings)
        ids = np.array(self.person_ids, dtype=np.int64)  # a copy, made read-only below
        if ids.shape != (len(gallery),) or (ids.size and not (ids.min() >= 0 and ids.max() < len(self.names))):
            raise UserError(
                f"person_ids must have shape ({len(gallery)},) with values in [0, {len(self.names)}), "
                f"but got shape {ids.shape}"
            )
        ids.flags.writeable = False
        object.__setattr__(self, "gallery", gallery)
        object.__setattr__(self, "embeddings", gallery.embeddings)
        object.__setattr__(self, "person_ids", ids)
        object.__setattr__(self, "labels", tuple(self.names[i] for i in ids.tolist()))


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError(f"{name} must be an integer >= 1, but got {value!r}")
    return int(value)


def check_name(name: str) -> str:
    """A person's name in NFC form (composed accents), or UserError stating the rule (NAME_RULE)."""
    if not isinstance(name, str):
        raise UserError(f"name must be a string, {NAME_RULE}; but got {type(name).__name__}")
    name = unicodedata.normalize("NFC", name)
    if not 1 <= len(name) <= NAME_MAX:
        raise UserError(f"name must be {NAME_RULE}; but got {len(name)} characters: {name[:80]!r}")
    if name != name.strip(" "):
        raise UserError(f"name must be {NAME_RULE}; but got {name!r} (remove the outer spaces)")
    for i, ch in enumerate(name):
        if not (ch in NAME_PUNCTUATION or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd"):
            raise UserError(f"name must be {NAME_RULE}; but got {name!r}: character {ch!r} at {i} is not allowed")
    return name


def _as_vectors(x: np.ndarray, size: int, what: str) -> np.ndarray:
    """Check embeddings: (K, size) float, K >= 1, finite as float32. Returns (K, size) float32 (values as given)."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] != size:
        raise UserError(
            f"{what} must have shape (K, {size}) with K >= 1 ({size} = the encoder's embedding size), "
            f"but got shape {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"{what} must be a float array (float32), but got dtype {arr.dtype}")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        bad = sorted({int(r) for r in np.flatnonzero(~np.isfinite(out).all(axis=1))})
        raise UserError(f"{what} must be finite in float32, but rows {bad} hold NaN, inf or values beyond 3.4e38")
    return out


def _vector_blob(v: np.ndarray) -> bytes:
    """v: (D,) float32. Returns its 4 * D bytes, little-endian."""
    return np.ascontiguousarray(v, dtype="<f4").tobytes()


def _encode_crops(crops: Sequence[np.ndarray] | None, k: int) -> list[bytes | None]:
    """crops: None, or k face crops, each (H, W) gray or (H, W, 3) BGR uint8. Returns k PNG byte strings (or Nones)."""
    if crops is None:
        return [None] * k
    if len(crops) != k:
        raise UserError(f"crops must hold one image per embedding ({k}), but got {len(crops)}: or pass crops=None")
    return [_png(c, i) for i, c in enumerate(crops)]


def _png(crop: np.ndarray, i: int) -> bytes:
    """crop: (H, W) or (H, W, 3) uint8, H, W >= 1. Returns its lossless PNG bytes."""
    arr = np.asarray(crop)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or 0 in arr.shape:
        raise UserError(
            f"crops[{i}] must be a (H, W) gray or (H, W, 3) BGR uint8 image, but got shape {arr.shape} {arr.dtype}"
        )
    ok, buf = cv2.imencode(".png", arr)
    if not ok:
        raise UserError(f"crops[{i}] could not be encoded as PNG (shape {arr.shape})")
    return buf.tobytes()


def _unpng(data: bytes, what: str) -> np.ndarray:
    """PNG bytes -> the (H, W) or (H, W, 3) uint8 image they hold."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data[:8] == PNG_MAGIC else None
    if img is None:
        raise UserError(f"{what} is not a readable PNG image ({len(data)} bytes starting {bytes(data[:8])!r})")
    return img


def _close_names(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "close names: " + ", ".join(repr(n) for n in close)
    return f"no close name among the {len(names)} enrolled (see people())"


def _encoder_mismatch(where: str, stored: EncoderId, model: EncoderId, fix: str) -> UserError:
    return UserError(
        f"{where} was enrolled with encoder {stored.describe()}, but the model is {model.describe()}: {fix}"
    )


def _newer_schema(where: str, version: Any) -> UserError:
    return UserError(
        f"{where} has schema version {version}, newer than this edgepipe reads ({SCHEMA_VERSION}): upgrade edgepipe"
    )


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str) -> Iterator[sqlite3.Connection]:
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


def _check_path(path: Path, may_create: bool) -> None:
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


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), foreign keys on, busy timeout set."""
    uri = f"{path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _read_meta(conn: sqlite3.Connection, path: Path) -> dict[str, Any]:
    """The meta table as a dict; {} for an empty database; UserError for a database that is not a gallery."""
    with _transaction(conn, "BEGIN"):
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "meta" not in tables:
            if tables:
                raise UserError(
                    f"{path} is an SQLite database but not a face gallery (tables {sorted(tables)}, no meta): "
                    "check the path"
                )
            return {}
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def _create(conn: sqlite3.Connection, path: Path, encoder: EncoderId | None) -> dict[str, Any]:
    """Create the schema in an empty database (unless another process just did). Returns the meta table."""
    if encoder is None:
        raise UserError(
            f"creating gallery {path} needs the encoder: pass encoder=EncoderId.of_file(model, embedding_size)"
        )
    if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
        raise UserError(f"gallery {path} could not be switched to WAL mode: put it on a local file system")
    with _transaction(conn, "BEGIN IMMEDIATE"):
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone() is None:
            for statement in SCHEMA:
                conn.execute(statement)
            meta = {"schema_version": SCHEMA_VERSION, "generation": 0, "created": time.time()}
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", list(meta.items()))
            _write_encoder(conn, encoder)
    return _read_meta(conn, path)


def _write_encoder(conn: sqlite3.Connection, encoder: EncoderId) -> None:
    values = {"encoder_sha256": encoder.sha256, "encoder_size": encoder.embedding_size, "encoder_name": encoder.name}
    conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", list(values.items()))


def _stored_encoder(meta: dict[str, Any], path: Path) -> EncoderId:
    """The encoder recorded in a gallery's meta table (schema version already checked)."""
    try:
        return EncoderId(meta["encoder_sha256"], int(meta["encoder_size"]), meta["encoder_name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"gallery {path} is damaged: its meta table lacks a valid encoder ({exc})") from exc


def _check_version(version: Any, where: str) -> None:
    if not isinstance(version, int):
        raise UserError(f"{where} is damaged: schema_version must be an integer, but got {version!r}")
    if version > SCHEMA_VERSION:
        raise _newer_schema(where, version)


def _generation(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])


def _bump_generation(conn: sqlite3.Connection) -> None:
    """Mark the embeddings as changed: every FaceDB's cached matrix() is rebuilt on its next call."""
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")


def _insert_event(
    conn: sqlite3.Connection, source: str, decision: str, distance: float | None, name: str, when: float
) -> None:
    conn.execute(
        "INSERT INTO events (time, source, decision, distance, name) VALUES (?, ?, ?, ?, ?)",
        (when, source, decision, distance, name),
    )


def _insert_embeddings(
    conn: sqlite3.Connection, person_id: int, vectors: np.ndarray, extras: Sequence[tuple[bytes | None, str, float]]
) -> None:
    """vectors: (K, D) float32; extras: K (crop as PNG bytes or None, source, created)."""
    conn.executemany(
        "INSERT INTO embeddings (person_id, vector, crop, source, created) VALUES (?, ?, ?, ?, ?)",
        [(person_id, _vector_blob(v), *extra) for v, extra in zip(vectors, extras, strict=True)],
    )


def _person(conn: sqlite3.Connection, person_id: int) -> Person:
    name, n, created = conn.execute(
        "SELECT p.name, COUNT(e.id), p.created FROM people p LEFT JOIN embeddings e ON e.person_id = p.id"
        " WHERE p.id = ? GROUP BY p.id",
        (person_id,),
    ).fetchone()
    return Person(name, n, created)


def _check_text(value: Any, name: str, allow_empty: bool) -> str:
    if not isinstance(value, str) or not (value or allow_empty):
        raise UserError(f"{name} must be a {'' if allow_empty else 'non-empty '}string, but got {value!r}")
    return value


def _check_rate(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0 <= value <= 1:
        raise UserError(f"{name} must be a rate in [0, 1] or None, but got {value!r}")
    return float(value)


def _check_distance(value: Any, name: str) -> float:
    """A distance >= 0, finite or inf (inf: the gallery was empty)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:
        raise UserError(f"{name} must be a number >= 0 (inf allowed), but got {value!r}")
    return float(value)


class FaceDB:
    """A face gallery in one SQLite file (WAL mode: kiosks read while an operator enrolls).

    Every change is one transaction: a process killed at any moment leaves the gallery as it was before or after.
    Open with FaceDB.open(...), use as a context manager or call close().
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, encoder: EncoderId, readonly: bool) -> None:
        """Use FaceDB.open: it checks the file, the schema version and the encoder."""
        self.path = path
        self.encoder = encoder
        self.readonly = readonly
        self._conn = conn
        self._cache: tuple[int, Enrolled] | None = None  # (generation, matrix) of the last matrix() call

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        encoder: EncoderId | None = None,
        create: bool = True,
        readonly: bool = False,
    ) -> FaceDB:
        """Open the gallery at path, creating it (with encoder) when missing and create is true.

        encoder: the model the caller will embed faces with; UserError when the gallery was enrolled with another.
        None: open with the stored encoder, for listing, export or reencode. readonly: no writes (mode=ro).
        """
        path = Path(path)
        _check_path(path, create and not readonly)
        conn = _connect(path, readonly)
        try:
            stored = cls._open_checks(conn, path, encoder, create and not readonly)
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")  # each commit is on disk before it returns
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, stored, readonly)

    @staticmethod
    def _open_checks(conn: sqlite3.Connection, path: Path, encoder: EncoderId | None, may_create: bool) -> EncoderId:
        """Read (or create) the meta table, check its schema version and encoder. Returns the stored encoder."""
        meta = _read_meta(conn, path)
        if not meta:
            if not may_create:
                raise UserError(f"{path} is an empty SQLite file, not a face gallery: open it with create=True")
            meta = _create(conn, path, encoder)
        _check_version(meta.get("schema_version"), f"gallery {path}")
        stored = _stored_encoder(meta, path)
        if encoder is not None and (encoder.sha256, encoder.embedding_size) != (stored.sha256, stored.embedding_size):
            raise _encoder_mismatch(f"gallery {path}", stored, encoder, "re-enroll, or run with --reencode")
        return stored

    def close(self) -> None:
        """Close the connection (a kiosk's other connections are unaffected)."""
        self._conn.close()

    def __enter__(self) -> FaceDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (the lock taken at BEGIN, so it never fails half-way for lack of it)."""
        if self.readonly:
            raise UserError(f"gallery {self.path} was opened read-only: open it with readonly=False to change it")
        return _transaction(self._conn, "BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        return _transaction(self._conn, "BEGIN")

    def _person_id(self, conn: sqlite3.Connection, name: str) -> int:
        """The id of the person called name, or UserError listing close names."""
        name = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        row = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:
            names = [r[0] for r in conn.execute("SELECT name FROM people ORDER BY id")]
            raise UserError(f"no person named {name!r} in gallery {self.path}; {_close_names(str(name), names)}")
        return row[0]

    def enroll(
        self, name: str, embeddings: np.ndarray, crops: Sequence[np.ndarray] | None = None, source: str = ""
    ) -> Person:
        """Add K embeddings to the person called name (created when new), in one transaction.

        embeddings: (K, D) float, D = the encoder's embedding size, finite; stored as float32, not re-normalised.
        crops: None, or the K face crops they came from, (H, W) gray or (H, W, 3) BGR uint8, kept as PNG so the
        gallery can be re-encoded. source: who or what enrolled them (camera, operator), kept with each row and
        in the audit log. Returns the person with their total count.
        """
        name = check_name(name)
        source = _check_text(source, "source", allow_empty=True)
        vectors = _as_vectors(embeddings, self.encoder.embedding_size, "embeddings")
        pngs = _encode_crops(crops, len(vectors))  # before the transaction: the write lock is held briefly
        now = time.time()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)", (name, now))
            person_id = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
            _insert_embeddings(conn, person_id, vectors, [(png, source, now) for png in pngs])
            _bump_generation(conn)
            _insert_event(conn, source, "enroll", None, name, now)
            return _person(conn, person_id)

    def people(self) -> list[Person]:
        """Everyone enrolled, in enrollment order ([] for an empty gallery)."""
        rows = self._conn.execute(
            "SELECT p.name, COUNT(e.id), p.created FROM people p LEFT JOIN embeddings e ON e.person_id = p.id"
            " GROUP BY p.id ORDER BY p.id"
        ).fetchall()
        return [Person(*row) for row in rows]

    def remove(self, name: str, source: str = "") -> int:
        """Delete the person called name and their embeddings. Returns how many embeddings were removed."""
        source = _check_text(source, "source", allow_empty=True)
        with self._write() as conn:
            person_id = self._person_id(conn, name)
            removed = _person(conn, person_id)
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))  # embeddings: ON DELETE CASCADE
            _bump_generation(conn)
            _insert_event(conn, source, "remove", None, removed.name, time.time())
        return removed.n_embeddings

    def embeddings_of(self, name: str) -> np.ndarray:
        """The stored embeddings of the person called name: (K, D) float32, in enrollment order."""
        with self._read() as conn:
            person_id = self._person_id(conn, name)
            rows = conn.execute("SELECT vector FROM embeddings WHERE person_id = ? ORDER BY id", (person_id,))
            blobs = [blob for (blob,) in rows]
        return self._vectors(blobs)

    def _vectors(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Stored vector blobs -> (N, D) float32 (a new, writable array)."""
        d = self.encoder.embedding_size
        bad = [i for i, b in enumerate(blobs) if len(b) != 4 * d]
        if bad:
            raise UserError(f"gallery {self.path} is damaged: embedding rows {bad[:5]} are not {4 * d} bytes")
        return np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(blobs), d)

    def matrix(self) -> Enrolled:
        """All embeddings as arrays for identify, rebuilt only when the gallery changed (in any process)."""
        with self._read() as conn:
            generation = _generation(conn)
            if self._cache is not None and self._cache[0] == generation:
                return self._cache[1]
            people = conn.execute("SELECT id, name FROM people ORDER BY id").fetchall()
            rows = conn.execute("SELECT person_id, vector FROM embeddings ORDER BY person_id, id").fetchall()
        index = {person_id: i for i, (person_id, _) in enumerate(people)}
        enrolled = Enrolled(
            self._vectors([blob for _, blob in rows]),
            np.array([index[person_id] for person_id, _ in rows], dtype=np.int64),
            tuple(name for _, name in people),
        )
        self._cache = (generation, enrolled)
        return enrolled

    @property
    def decision_threshold(self) -> DecisionThreshold:
        """The threshold and its calibration; UserError when none was set yet."""
        with self._read() as conn:
            found = _read_threshold(conn)
        if found is None:
            raise UserError(
                f"gallery {self.path} has no decision threshold yet: calibrate one (postprocess.calibrate on held-out "
                "pairs) and call set_threshold"
            )
        return found

    @property
    def threshold(self) -> float:
        """The decision threshold: accept a face when its best distance <= threshold (in the encoder's metric)."""
        return self.decision_threshold.value

    def set_threshold(self, value: float, far: float | None = None, eer: float | None = None) -> None:
        """Store the decision threshold (finite, >= 0) with the FAR and EER its calibration measured (in [0, 1])."""
        value = _check_distance(value, "threshold")
        if math.isinf(value):
            raise UserError("threshold must be finite, but got inf: use the threshold postprocess.calibrate returns")
        with self._write() as conn:
            _write_threshold(
                conn, DecisionThreshold(value, _check_rate(far, "far"), _check_rate(eer, "eer"), time.time())
            )

    def log(self, source: str, decision: str, distance: float, name: str = "") -> None:
        """Append one decision to the audit log. distance: the best distance (>= 0; inf for an empty gallery)."""
        source = _check_text(source, "source", allow_empty=True)
        decision = _check_text(decision, "decision", allow_empty=False)
        distance = _check_distance(distance, "distance")
        name = _check_text(name, "name", allow_empty=True)
        with self._write() as conn:
            _insert_event(conn, source, decision, distance, name, time.time())

    def events(self, limit: int = 100) -> list[Event]:
        """The last limit audit-log entries, newest first."""
        limit = _check_positive_int(limit, "limit")
        rows = self._conn.execute(
            "SELECT time, source, decision, distance, name FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Event(t, s, d, math.nan if dist is None else dist, n) for t, s, d, dist, n in rows]

    def reencode(self, embed: Callable[[list[np.ndarray]], np.ndarray], encoder: EncoderId) -> int:
        """Recompute every embedding from its stored crop with a new encoder, in one transaction. Returns N.

        embed: called once per person, inside the transaction, with their crops ((H, W) or (H, W, 3) uint8, as
        enrolled); returns (K, encoder.embedding_size) float. The threshold is kept: recalibrate it for the new
        encoder. Any error (a missing crop, embed raising) leaves the gallery as it was.
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT e.id, p.name, e.crop FROM embeddings e JOIN people p ON p.id = e.person_id ORDER BY p.id, e.id"
            ).fetchall()
            missing = sorted({name for _, name, crop in rows if crop is None})
            if missing:
                raise UserError(
                    f"cannot re-encode gallery {self.path}: no stored face crops for {', '.join(missing)}; "
                    "remove them and enroll them again with crops"
                )
            for name, group in groupby(rows, key=lambda r: r[1]):
                ids, crops = zip(*[(i, _unpng(crop, f"the crop of {name}")) for i, _, crop in group], strict=True)
                vectors = _as_vectors(embed(list(crops)), encoder.embedding_size, f"embed() output for {name}")
                if len(vectors) != len(ids):
                    raise UserError(
                        f"embed() must return {len(ids)} rows for {name}, one per crop: got {len(vectors)}"
                    )
                conn.executemany(
                    "UPDATE embeddings SET vector = ? WHERE id = ?",
                    [(_vector_blob(v), i) for v, i in zip(vectors, ids, strict=True)],
                )
            _write_encoder(conn, encoder)
            _bump_generation(conn)
        self.encoder = encoder
        return len(rows)

    def export_json(self, path: str | os.PathLike) -> None:
        """Write the gallery (encoder, threshold, people, embeddings as float lists, crops as base64 PNG) to a JSON
        file, atomically (a temporary file renamed over path). The audit log is not exported."""
        with self._read() as conn:
            people = conn.execute("SELECT id, name, created FROM people ORDER BY id").fetchall()
            query = "SELECT person_id, vector, crop, source, created FROM embeddings ORDER BY id"
            rows = conn.execute(query).fetchall()
            threshold = _read_threshold(conn)
        by_person: dict[int, list[dict[str, Any]]] = {person_id: [] for person_id, _, _ in people}
        vectors = self._vectors([r[1] for r in rows])
        for (person_id, _, crop, source, created), v in zip(rows, vectors, strict=True):
            by_person[person_id].append(
                {
                    "vector": v.tolist(),  # float32 -> Python float -> JSON -> float32 is exact
                    "crop_png": None if crop is None else base64.b64encode(crop).decode("ascii"),
                    "source": source,
                    "created": created,
                }
            )
        doc = {
            "format": EXPORT_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "encoder": asdict(self.encoder),
            "threshold": None if threshold is None else asdict(threshold),
            "people": [{"name": n, "created": c, "embeddings": by_person[i]} for i, n, c in people],
        }
        _write_atomic(Path(path), json.dumps(doc, allow_nan=False).encode("utf-8"))

    def import_json(self, path: str | os.PathLike, replace: bool = False) -> list[Person]:
        """Add the people of an export_json file, all or nothing. Returns them as stored.

        The file's schema version and encoder must match this gallery's. A name already enrolled is a UserError
        unless replace, which swaps that person's embeddings for the file's. The file's threshold is taken only
        when this gallery has none.
        """
        path = Path(path)
        doc = _load_export(path)
        encoder = _parse_encoder(doc.get("encoder"), path)
        if (encoder.sha256, encoder.embedding_size) != (self.encoder.sha256, self.encoder.embedding_size):
            fix = f"re-encode one of them to match gallery {self.path}"
            raise _encoder_mismatch(f"gallery export {path}", encoder, self.encoder, fix)
        entries = _as_list(doc.get("people"), "people", path)
        people = [_parse_person(p, self.encoder.embedding_size, f"{path}: people[{i}]") for i, p in enumerate(entries)]
        threshold = _parse_threshold(doc.get("threshold"), path)
        names = [p.name for p in people]
        if len(set(names)) != len(names):
            raise UserError(f"{path} lists some people twice: {sorted({n for n in names if names.count(n) > 1})}")
        with self._write() as conn:
            clash = [n for n in names if conn.execute("SELECT 1 FROM people WHERE name = ?", (n,)).fetchone()]
            if clash and not replace:
                raise UserError(
                    f"{path} holds people already in gallery {self.path}: {clash}; pass replace=True to replace "
                    "them, or remove them first"
                )
            stored = [_import_person(conn, person, str(path)) for person in people]
            if threshold is not None and _read_threshold(conn) is None:
                _write_threshold(conn, threshold)
            _bump_generation(conn)
        return stored


@dataclass(frozen=True, eq=False)
class _ExportedPerson:
    """One person of an export file: vectors (K, D) float32 and K (crop PNG bytes or None, source, created)."""

    name: str
    created: float
    vectors: np.ndarray
    extras: list[tuple[bytes | None, str, float]]


def _read_threshold(conn: sqlite3.Connection) -> DecisionThreshold | None:
    """The stored threshold, or None when none was set."""
    meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)", THRESHOLD_KEYS).fetchall())
    if "threshold" not in meta:
        return None
    return DecisionThreshold(
        meta["threshold"], meta.get("threshold_far"), meta.get("threshold_eer"), meta["threshold_when"]
    )


def _write_threshold(conn: sqlite3.Connection, t: DecisionThreshold) -> None:
    conn.execute("DELETE FROM meta WHERE key IN (?, ?, ?, ?)", THRESHOLD_KEYS)
    values = zip(THRESHOLD_KEYS, (t.value, t.far, t.eer, t.when), strict=True)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [(k, v) for k, v in values if v is not None])


def _import_person(conn: sqlite3.Connection, person: _ExportedPerson, source: str) -> Person:
    """Insert one exported person (replacing one of the same name) inside the caller's transaction."""
    conn.execute("DELETE FROM people WHERE name = ?", (person.name,))  # their embeddings: ON DELETE CASCADE
    person_id = conn.execute(
        "INSERT INTO people (name, created) VALUES (?, ?)", (person.name, person.created)
    ).lastrowid
    _insert_embeddings(conn, person_id, person.vectors, person.extras)
    _insert_event(conn, source, "import", None, person.name, time.time())
    return _person(conn, person_id)


def _parse_person(entry: Any, size: int, where: str) -> _ExportedPerson:
    """One person of an export file, checked: a valid name, K >= 1 finite vectors of the size, decodable crops."""
    if not isinstance(entry, dict) or not isinstance(entry.get("embeddings"), list):
        raise UserError(f"{where} must be an object with name, created and a list of embeddings")
    try:
        name = check_name(entry.get("name"))
    except ValueError as exc:
        raise UserError(f"{where}: {exc}") from exc
    rows = entry["embeddings"]
    if not all(isinstance(r, dict) and isinstance(r.get("vector"), list) for r in rows):
        raise UserError(f"{where}.embeddings must be objects holding a vector (a list of numbers)")
    try:
        vectors = np.array([r["vector"] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}.embeddings: every vector must be a list of {size} numbers ({exc})") from exc
    extras = [
        (
            _parse_crop(r.get("crop_png"), f"{where}.embeddings[{j}].crop_png"),
            _check_text(r.get("source", ""), f"{where}.embeddings[{j}].source", allow_empty=True),
            _as_time(r.get("created"), f"{where}.embeddings[{j}].created"),
        )
        for j, r in enumerate(rows)
    ]
    created = _as_time(entry.get("created"), f"{where}.created")
    return _ExportedPerson(name, created, _as_vectors(vectors, size, f"{where}.embeddings"), extras)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write data to path through a temporary file in the same folder, fsynced, then renamed over path."""
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_encoder(path: str | os.PathLike) -> EncoderId:
    """The encoder recorded in a file written by export_json (to create a gallery to import it into)."""
    path = Path(path)
    return _parse_encoder(_load_export(path).get("encoder"), path)


def _load_export(path: Path) -> dict[str, Any]:
    """Read an export_json file and check its format and schema version."""
    if not path.is_file():
        raise UserError(f"gallery export {path} not found: check the path")
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a gallery export: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT:
        raise UserError(f"{path} is not a gallery export: format must be {EXPORT_FORMAT!r} (written by export_json)")
    _check_version(doc.get("schema_version"), str(path))
    return doc


def _as_list(value: Any, name: str, path: Path) -> list[Any]:
    if not isinstance(value, list):
        raise UserError(f"{path}: {name} must be a list, but got {type(value).__name__}")
    return value


def _as_time(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"{name} must be a time in Unix seconds, but got {value!r}")
    return float(value)


def _parse_encoder(value: Any, path: Path) -> EncoderId:
    if not isinstance(value, dict):
        raise UserError(f"{path}: encoder must be an object with sha256, embedding_size and name, but got {value!r}")
    return EncoderId(value.get("sha256"), value.get("embedding_size"), value.get("name"))


def _parse_threshold(value: Any, path: Path) -> DecisionThreshold | None:
    """An exported threshold, or None when the file has none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise UserError(f"{path}: threshold must be an object or null, but got {value!r}")
    return DecisionThreshold(
        _check_distance(value.get("value"), f"{path}: threshold.value"),
        _check_rate(value.get("far"), f"{path}: threshold.far"),
        _check_rate(value.get("eer"), f"{path}: threshold.eer"),
        _as_time(value.get("when"), f"{path}: threshold.when"),
    )


def _parse_crop(value: Any, name: str) -> bytes | None:
    """A base64 PNG (checked to decode) or None."""
    if value is None:
        return None
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except ValueError as exc:
        raise UserError(f"{name} must be base64 PNG bytes or null, but it is not valid base64") from exc
    _unpng(data, name)
    return data
