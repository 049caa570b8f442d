"""FaceDB: the face gallery in one SQLite file (WAL mode), every change one transaction."""

from __future__ import annotations

import difflib
import math
import os
import sqlite3
import time
import unicodedata
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from itertools import groupby
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery.schema import (
    bump_generation,
    check_gallery_path,
    connect,
    create_schema,
    import_person,
    insert_embeddings,
    insert_event,
    read_generation,
    read_meta,
    read_person,
    read_threshold,
    stored_encoder,
    transaction,
    vector_blob,
    write_encoder,
    write_threshold,
)
from edgepipe.apps.face.gallery.transfer import ExportedPerson, GalleryExport, read_export, write_export
from edgepipe.apps.face.gallery.values import (
    AuditEntry,
    DecisionThreshold,
    EncoderId,
    Enrolled,
    Person,
    as_vectors,
    check_distance,
    check_name,
    check_positive_int,
    check_rate,
    check_text,
    check_version,
    decode_png,
    encode_crops,
    encoder_mismatch,
)
from edgepipe.postprocess.errors import UserError


def _close_names(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return "close names: " + ", ".join(repr(n) for n in close)
    return f"no close name among the {len(names)} enrolled (see people())"


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
        check_gallery_path(path, create and not readonly)
        conn = connect(path, readonly)
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
        meta = read_meta(conn, path)
        if not meta:
            if not may_create:
                raise UserError(f"{path} is an empty SQLite file, not a face gallery: open it with create=True")
            meta = create_schema(conn, path, encoder)
        check_version(meta.get("schema_version"), f"gallery {path}")
        stored = stored_encoder(meta, path)
        if encoder is not None and (encoder.sha256, encoder.embedding_size) != (stored.sha256, stored.embedding_size):
            raise encoder_mismatch(f"gallery {path}", stored, encoder, "re-enroll, or run with --reencode")
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
        return transaction(self._conn, "BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        return transaction(self._conn, "BEGIN")

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
        source = check_text(source, "source", allow_empty=True)
        vectors = as_vectors(embeddings, self.encoder.embedding_size, "embeddings")
        pngs = encode_crops(crops, len(vectors))  # before the transaction: the write lock is held briefly
        now = time.time()
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)", (name, now))
            person_id = conn.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()[0]
            insert_embeddings(conn, person_id, vectors, [(png, source, now) for png in pngs])
            bump_generation(conn)
            insert_event(conn, source, "enroll", None, name, now)
            return read_person(conn, person_id)

    def people(self) -> list[Person]:
        """Everyone enrolled, in enrollment order ([] for an empty gallery)."""
        rows = self._conn.execute(
            "SELECT p.name, COUNT(e.id), p.created FROM people p LEFT JOIN embeddings e ON e.person_id = p.id"
            " GROUP BY p.id ORDER BY p.id"
        ).fetchall()
        return [Person(*row) for row in rows]

    def remove(self, name: str, source: str = "") -> int:
        """Delete the person called name and their embeddings. Returns how many embeddings were removed."""
        source = check_text(source, "source", allow_empty=True)
        with self._write() as conn:
            person_id = self._person_id(conn, name)
            removed = read_person(conn, person_id)
            conn.execute("DELETE FROM people WHERE id = ?", (person_id,))  # embeddings: ON DELETE CASCADE
            bump_generation(conn)
            insert_event(conn, source, "remove", None, removed.name, time.time())
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
            generation = read_generation(conn)
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
            found = read_threshold(conn)
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
        value = check_distance(value, "threshold")
        if math.isinf(value):
            raise UserError("threshold must be finite, but got inf: use the threshold postprocess.calibrate returns")
        with self._write() as conn:
            write_threshold(
                conn, DecisionThreshold(value, check_rate(far, "far"), check_rate(eer, "eer"), time.time())
            )

    def log(self, source: str, decision: str, distance: float, name: str = "") -> None:
        """Append one decision to the audit log. distance: the best distance (>= 0; inf for an empty gallery)."""
        source = check_text(source, "source", allow_empty=True)
        decision = check_text(decision, "decision", allow_empty=False)
        distance = check_distance(distance, "distance")
        name = check_text(name, "name", allow_empty=True)
        with self._write() as conn:
            insert_event(conn, source, decision, distance, name, time.time())

    def events(self, limit: int = 100) -> list[AuditEntry]:
        """The last limit audit-log entries, newest first."""
        limit = check_positive_int(limit, "limit")
        rows = self._conn.execute(
            "SELECT time, source, decision, distance, name FROM events ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [AuditEntry(t, s, d, math.nan if dist is None else dist, n) for t, s, d, dist, n in rows]

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
                ids, crops = zip(*[(i, decode_png(crop, f"the crop of {name}")) for i, _, crop in group], strict=True)
                vectors = as_vectors(embed(list(crops)), encoder.embedding_size, f"embed() output for {name}")
                if len(vectors) != len(ids):
                    raise UserError(
                        f"embed() must return {len(ids)} rows for {name}, one per crop: got {len(vectors)}"
                    )
                conn.executemany(
                    "UPDATE embeddings SET vector = ? WHERE id = ?",
                    [(vector_blob(v), i) for v, i in zip(vectors, ids, strict=True)],
                )
            write_encoder(conn, encoder)
            bump_generation(conn)
        self.encoder = encoder
        return len(rows)

    def export_json(self, path: str | os.PathLike) -> None:
        """Write the gallery (encoder, threshold, people, embeddings, crops) to a JSON export file, atomically (a
        temporary file renamed over path). The audit log is not exported."""
        with self._read() as conn:
            people = conn.execute("SELECT id, name, created FROM people ORDER BY id").fetchall()
            query = "SELECT person_id, vector, crop, source, created FROM embeddings ORDER BY person_id, id"
            rows = conn.execute(query).fetchall()
            threshold = read_threshold(conn)
        vectors = self._vectors([r[1] for r in rows])
        mine: dict[int, list[int]] = {person_id: [] for person_id, _, _ in people}  # person id -> their rows
        for i, row in enumerate(rows):
            mine[row[0]].append(i)
        exported = [ExportedPerson(name, created, vectors[mine[person_id]], [rows[i][2:] for i in mine[person_id]])
                    for person_id, name, created in people]
        write_export(Path(path), GalleryExport(self.encoder, threshold, exported))

    def import_json(self, path: str | os.PathLike, replace: bool = False) -> list[Person]:
        """Add the people of an export_json file, all or nothing. Returns them as stored.

        The file's schema version and encoder must match this gallery's. A name already enrolled is a UserError
        unless replace, which swaps that person's embeddings for the file's. The file's threshold is taken only
        when this gallery has none.
        """
        path = Path(path)
        found = read_export(path, self.encoder, f"re-encode one of them to match gallery {self.path}")
        names = [p.name for p in found.people]
        with self._write() as conn:
            clash = [n for n in names if conn.execute("SELECT 1 FROM people WHERE name = ?", (n,)).fetchone()]
            if clash and not replace:
                raise UserError(
                    f"{path} holds people already in gallery {self.path}: {clash}; pass replace=True to replace "
                    "them, or remove them first"
                )
            stored = [import_person(conn, person, str(path)) for person in found.people]
            if found.threshold is not None and read_threshold(conn) is None:
                write_threshold(conn, found.threshold)
            bump_generation(conn)
        return stored


