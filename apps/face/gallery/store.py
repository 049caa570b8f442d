"""GalleryStore: what every face gallery does (enroll, identify's matrix, threshold, audit log, re-encode, export and
import), written once over the SQL each store gives in its driver's parameter style."""

from __future__ import annotations

import math
import os
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgepipe.apps.face.gallery.transfer import ExportedPerson, GalleryExport, read_export, write_export
from edgepipe.apps.face.gallery.values import (
    SCHEMA_VERSION,
    AuditEntry,
    DecisionThreshold,
    EncoderId,
    Enrolled,
    GalleryStatus,
    Person,
    as_vectors,
    check_distance,
    check_entry,
    check_name,
    check_positive_int,
    check_rate,
    check_text,
    close_names,
    decode_png,
    encode_crops,
    enrolled_from,
    vector_blob,
)
from edgepipe.postprocess.errors import UserError

THRESHOLD_KEYS = ("threshold", "threshold_far", "threshold_eer", "threshold_when")
ENCODER_KEYS = ("encoder_sha256", "encoder_size", "encoder_name")


@dataclass(frozen=True)
class Statements:
    """The SQL a store runs, in its driver's parameter style (sqlite3: ?, psycopg: %s). Values are always passed as
    parameters, never formatted in. Each field names its parameters and the columns it returns."""

    person_add: str  # (name, created): a new person, nothing when the name is taken
    person_id: str  # (name,) -> id
    names: str  # () -> name, in enrollment order
    person: str  # (id,) -> name, embeddings, created
    people: str  # () -> name, embeddings, created: everyone in enrollment order
    person_delete: str  # (id,): the person and (cascade) their embeddings
    person_delete_name: str  # (name,)
    embedding_add: str  # (person_id, vector, crop, source, created)
    vectors_of: str  # (person_id,) -> vector, in enrollment order
    matrix_people: str  # () -> id, name, in enrollment order
    matrix_rows: str  # () -> person_id, vector, by person then enrollment
    export_people: str  # () -> id, name, created, in enrollment order
    export_rows: str  # () -> person_id, vector, crop, source, created, by person then enrollment
    crops: str  # () -> embedding id, name, crop, by person then enrollment
    vector_set: str  # (vector, embedding id)
    event_add: str  # (time, source, decision, distance, name)
    events: str  # (limit,) -> time, source, decision, distance, name, newest first
    meta: str  # () -> key, value
    meta_put: str  # (key, value), replacing the key's value
    threshold_clear: str  # (): the threshold keys deleted
    generation: str  # () -> the generation


def first_meta(where: str, encoder: EncoderId | None) -> dict[str, Any]:
    """The meta values of a gallery created now for encoder (UserError without one)."""
    if encoder is None:
        raise UserError(
            f"creating gallery {where} needs the encoder: pass encoder=EncoderId.of_file(model, embedding_size)"
        )
    return {"schema_version": SCHEMA_VERSION, "generation": 0, "created": time.time(),
            **dict(zip(ENCODER_KEYS, (encoder.sha256, encoder.embedding_size, encoder.name), strict=True))}


class LiveGallery(Protocol):
    """A gallery as a kiosk's frame loop uses it: never waiting on a network."""

    def matrix(self) -> Enrolled: ...

    def log(self, source: str, decision: str, distance: float, name: str = "") -> None: ...

    def status(self) -> GalleryStatus: ...

    def close(self) -> None: ...


class GalleryStore(ABC):
    """A face gallery: people, their embeddings and crops, the decision threshold and the audit log. Every change
    is one transaction: a process killed at any moment leaves the gallery as it was before or after.

    The stores (sqlite.FaceDB, postgres.PostgresGallery) give the SQL (sql), their transactions and how a change
    is announced; everything else is here. Use a store as a context manager or call close().
    """

    sql: Statements

    def __init__(self, where: str, conn: Any, encoder: EncoderId, readonly: bool) -> None:
        self.where = where  # the gallery in messages: a file path, or a server URL without its password
        self.encoder = encoder
        self.readonly = readonly
        self._conn = conn
        self._cache: tuple[int, Enrolled] | None = None  # (generation, matrix) of the last matrix() call

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A read transaction: every query inside sees the same snapshot. Yields the connection."""

    @abstractmethod
    def _begin_write(self) -> AbstractContextManager[Any]:
        """A write transaction that holds the gallery's write lock from its start. Yields the connection."""

    @abstractmethod
    def _changed(self, conn: Any, names: Sequence[str] | None) -> None:
        """Inside a write: the embeddings of names (None: of everyone) changed; every matrix() is rebuilt."""

    def _meta_value(self, value: Any) -> Any:
        """A meta value as the driver stores it."""
        return value

    def __enter__(self) -> GalleryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[Any]:
        if self.readonly:
            raise UserError(f"gallery {self.where} was opened read-only (its file or folder cannot be written): "
                            "changing it needs write access")
        return self._begin_write()

    def _person_id(self, conn: Any, name: str) -> int:
        """The id of the person called name, or UserError listing close names."""
        name = unicodedata.normalize("NFC", name) if isinstance(name, str) else name
        row = conn.execute(self.sql.person_id, (name,)).fetchone()
        if row is None:
            names = [r[0] for r in conn.execute(self.sql.names)]
            raise UserError(f"no person named {name!r} in gallery {self.where}; {close_names(str(name), names)}")
        return row[0]

    def _add_person(self, conn: Any, name: str, created: float) -> int:
        conn.execute(self.sql.person_add, (name, created))
        return conn.execute(self.sql.person_id, (name,)).fetchone()[0]

    def _add_embeddings(
        self, conn: Any, person_id: int, vectors: np.ndarray, extras: Sequence[tuple[bytes | None, str, float]]
    ) -> None:
        """vectors: (K, D) float32; extras: K (crop as PNG bytes or None, source, created)."""
        rows = [(person_id, vector_blob(v), *extra) for v, extra in zip(vectors, extras, strict=True)]
        conn.cursor().executemany(self.sql.embedding_add, rows)

    def _event(self, conn: Any, source: str, decision: str, distance: float | None, name: str, when: float) -> None:
        conn.execute(self.sql.event_add, (when, source, decision, distance, name))

    def _person(self, conn: Any, person_id: int) -> Person:
        return Person(*conn.execute(self.sql.person, (person_id,)).fetchone())

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
            person_id = self._add_person(conn, name, now)
            self._add_embeddings(conn, person_id, vectors, [(png, source, now) for png in pngs])
            self._changed(conn, [name])
            self._event(conn, source, "enroll", None, name, now)
            return self._person(conn, person_id)

    def people(self) -> list[Person]:
        """Everyone enrolled, in enrollment order ([] for an empty gallery)."""
        with self._read() as conn:
            return [Person(*row) for row in conn.execute(self.sql.people).fetchall()]

    def remove(self, name: str, source: str = "") -> int:
        """Delete the person called name and their embeddings. Returns how many embeddings were removed."""
        source = check_text(source, "source", allow_empty=True)
        with self._write() as conn:
            person_id = self._person_id(conn, name)
            removed = self._person(conn, person_id)
            conn.execute(self.sql.person_delete, (person_id,))  # embeddings: ON DELETE CASCADE
            self._changed(conn, [removed.name])
            self._event(conn, source, "remove", None, removed.name, time.time())
        return removed.n_embeddings

    def embeddings_of(self, name: str) -> np.ndarray:
        """The stored embeddings of the person called name: (K, D) float32, in enrollment order."""
        with self._read() as conn:
            person_id = self._person_id(conn, name)
            blobs = [blob for (blob,) in conn.execute(self.sql.vectors_of, (person_id,))]
        return self._vectors(blobs)

    def _vectors(self, blobs: Sequence[bytes]) -> np.ndarray:
        """Stored vector blobs -> (N, D) float32 (a new, writable array)."""
        d = self.encoder.embedding_size
        bad = [i for i, b in enumerate(blobs) if len(b) != 4 * d]
        if bad:
            raise UserError(f"gallery {self.where} is damaged: embedding rows {bad[:5]} are not {4 * d} bytes")
        return np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(blobs), d)

    def matrix(self) -> Enrolled:
        """All embeddings as arrays for identify, rebuilt only when the gallery changed (in any process)."""
        with self._read() as conn:
            generation = int(conn.execute(self.sql.generation).fetchone()[0])
            if self._cache is not None and self._cache[0] == generation:
                return self._cache[1]
            people = conn.execute(self.sql.matrix_people).fetchall()
            rows = conn.execute(self.sql.matrix_rows).fetchall()
        person_ids = np.array([person_id for person_id, _ in rows], dtype=np.int64)
        enrolled = enrolled_from(people, person_ids, self._vectors([blob for _, blob in rows]))
        self._cache = (generation, enrolled)
        return enrolled

    def follow(self) -> LiveGallery:
        """The gallery as a kiosk uses it (matrix per frame, log per decision, status). Here the store itself:
        its matrix() re-reads only after a change. Stores on a server return a background follower."""
        return self

    def status(self) -> GalleryStatus:
        """The matrix last returned: people, embeddings and generation (a local file is always current)."""
        if self._cache is None:
            return GalleryStatus(0, 0, -1)
        generation, enrolled = self._cache
        return GalleryStatus(len(enrolled.names), len(enrolled.embeddings), generation)

    def _threshold(self, conn: Any) -> DecisionThreshold | None:
        """The stored threshold, or None when none was set."""
        meta = dict(conn.execute(self.sql.meta).fetchall())
        if "threshold" not in meta:
            return None
        return DecisionThreshold(
            meta["threshold"], meta.get("threshold_far"), meta.get("threshold_eer"), meta["threshold_when"]
        )

    def _put_threshold(self, conn: Any, t: DecisionThreshold) -> None:
        conn.execute(self.sql.threshold_clear)
        self._put_meta(conn, zip(THRESHOLD_KEYS, (t.value, t.far, t.eer, t.when), strict=True))

    def _put_meta(self, conn: Any, items: Any) -> None:
        rows = [(key, self._meta_value(value)) for key, value in items if value is not None]
        conn.cursor().executemany(self.sql.meta_put, rows)

    def _put_encoder(self, conn: Any, encoder: EncoderId) -> None:
        self._put_meta(conn, zip(ENCODER_KEYS, (encoder.sha256, encoder.embedding_size, encoder.name), strict=True))

    @property
    def decision_threshold(self) -> DecisionThreshold:
        """The threshold and its calibration; UserError when none was set yet."""
        with self._read() as conn:
            found = self._threshold(conn)
        if found is None:
            raise UserError(
                f"gallery {self.where} has no decision threshold yet: calibrate one (postprocess.calibrate on "
                "held-out pairs) and call set_threshold"
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
        threshold = DecisionThreshold(value, check_rate(far, "far"), check_rate(eer, "eer"), time.time())
        with self._write() as conn:
            self._put_threshold(conn, threshold)

    def log(self, source: str, decision: str, distance: float, name: str = "") -> None:
        """Append one decision to the audit log. distance: the best distance (>= 0; inf for an empty gallery)."""
        self.log_many([check_entry(source, decision, distance, name, time.time())])

    def log_many(self, entries: Sequence[AuditEntry]) -> None:
        """Append checked audit entries (check_entry) in one transaction."""
        with self._write() as conn:
            for e in entries:
                self._event(conn, e.source, e.decision, e.distance, e.name, e.time)

    def events(self, limit: int = 100) -> list[AuditEntry]:
        """The last limit audit-log entries, newest first."""
        limit = check_positive_int(limit, "limit")
        with self._read() as conn:
            rows = conn.execute(self.sql.events, (limit,)).fetchall()
        return [AuditEntry(t, s, d, math.nan if dist is None else dist, n) for t, s, d, dist, n in rows]

    def reencode(self, embed: Callable[[list[np.ndarray]], np.ndarray], encoder: EncoderId) -> int:
        """Recompute every embedding from its stored crop with a new encoder, in one transaction. Returns N.

        embed: called once per person, inside the transaction, with their crops ((H, W) or (H, W, 3) uint8, as
        enrolled); returns (K, encoder.embedding_size) float. The threshold is kept: recalibrate it for the new
        encoder. Any error (a missing crop, embed raising) leaves the gallery as it was.
        """
        with self._write() as conn:
            rows = conn.execute(self.sql.crops).fetchall()
            missing = sorted({name for _, name, crop in rows if crop is None})
            if missing:
                raise UserError(
                    f"cannot re-encode gallery {self.where}: no stored face crops for {', '.join(missing)}; "
                    "remove them and enroll them again with crops"
                )
            for name, group in groupby(rows, key=lambda r: r[1]):
                ids, crops = zip(*[(i, decode_png(crop, f"the crop of {name}")) for i, _, crop in group], strict=True)
                vectors = as_vectors(embed(list(crops)), encoder.embedding_size, f"embed() output for {name}")
                if len(vectors) != len(ids):
                    raise UserError(
                        f"embed() must return {len(ids)} rows for {name}, one per crop: got {len(vectors)}"
                    )
                conn.cursor().executemany(
                    self.sql.vector_set, [(vector_blob(v), i) for v, i in zip(vectors, ids, strict=True)]
                )
            self._put_encoder(conn, encoder)
            self._changed(conn, None)
        self.encoder = encoder
        return len(rows)

    def export_json(self, path: str | os.PathLike) -> None:
        """Write the gallery (encoder, threshold, people, embeddings, crops) to a JSON export file, atomically (a
        temporary file renamed over path). The audit log is not exported."""
        with self._read() as conn:
            people = conn.execute(self.sql.export_people).fetchall()
            rows = conn.execute(self.sql.export_rows).fetchall()
            threshold = self._threshold(conn)
        vectors = self._vectors([r[1] for r in rows])
        mine: dict[int, list[int]] = {person_id: [] for person_id, _, _ in people}  # person id -> their rows
        for i, row in enumerate(rows):
            mine[row[0]].append(i)
        exported = [
            ExportedPerson(name, created, vectors[mine[person_id]], [tuple(rows[i][2:]) for i in mine[person_id]])
            for person_id, name, created in people
        ]
        write_export(Path(path), GalleryExport(self.encoder, threshold, exported))

    def import_json(self, path: str | os.PathLike, replace: bool = False) -> list[Person]:
        """Add the people of an export_json file, all or nothing. Returns them as stored.

        The file's schema version and encoder must match this gallery's. A name already enrolled is a UserError
        unless replace, which swaps that person's embeddings for the file's. The file's threshold is taken only
        when this gallery has none.
        """
        path = Path(path)
        found = read_export(path, self.encoder, f"re-encode one of them to match gallery {self.where}")
        names = [p.name for p in found.people]
        with self._write() as conn:
            clash = [n for n in names if conn.execute(self.sql.person_id, (n,)).fetchone()]
            if clash and not replace:
                raise UserError(
                    f"{path} holds people already in gallery {self.where}: {clash}; import with --replace "
                    "(replace=True) to replace them, or remove them first"
                )
            stored = [self._import_person(conn, person, str(path)) for person in found.people]
            if found.threshold is not None and self._threshold(conn) is None:
                self._put_threshold(conn, found.threshold)
            self._changed(conn, names)
        return stored

    def _import_person(self, conn: Any, person: ExportedPerson, source: str) -> Person:
        """Insert one exported person (replacing one of the same name) inside the caller's transaction."""
        conn.execute(self.sql.person_delete_name, (person.name,))  # their embeddings: ON DELETE CASCADE
        person_id = self._add_person(conn, person.name, person.created)
        self._add_embeddings(conn, person_id, person.vectors, person.extras)
        self._event(conn, source, "import", None, person.name, time.time())
        return self._person(conn, person_id)
