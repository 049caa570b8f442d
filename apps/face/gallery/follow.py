"""GalleryFollower: a kiosk's copy of a PostgreSQL gallery in memory, kept current by LISTEN/NOTIFY in a background
thread, so identify stays local and the frame loop never waits on the network."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from edgepipe.apps.face.gallery.pg_schema import (
    CHANGES_SINCE,
    COUNT_ROWS,
    MATRIX_PAGE,
    PEOPLE_OF_NAMES,
    POSTGRES,
    ROWS_OF_NAMES,
)
from edgepipe.apps.face.gallery.postgres import PostgresGallery
from edgepipe.apps.face.gallery.values import (
    AuditEntry,
    Enrolled,
    GalleryStatus,
    check_entry,
    check_meta,
    enrolled_from,
)
from edgepipe.apps.servers import Backoff, Unreachable
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.gallery")

WAIT_S = 0.25  # the thread wakes this often to write queued audit entries and to see a stop
CHECK_S = 5.0  # and reads the generation this often even without a notification (a dead connection shows)
AUDIT_MAX = 10_000  # audit entries kept while the server is away; older ones are dropped, counted
PAGE = 10_000  # embeddings per query when loading the whole gallery


@dataclass(frozen=True, eq=False)
class Mirror:
    """The gallery as this process holds it: people (id -> name), each row's person id and embedding id (both
    (N,) int64, rows sorted by person then embedding, as the store's matrix()), and the matrix."""

    people: dict[int, str]
    person_ids: np.ndarray
    row_ids: np.ndarray
    enrolled: Enrolled

    @classmethod
    def build(cls, people: dict[int, str], person_ids: np.ndarray, row_ids: np.ndarray, vectors: np.ndarray) -> Mirror:
        """Rows in any order -> sorted by (person id, embedding id). vectors: (N, D) float32 (copied once, by the
        matrix, when already in order)."""
        order = np.lexsort((row_ids, person_ids))
        ordered = sorted(people.items())
        if not (np.diff(order) == 1).all():
            person_ids, row_ids, vectors = person_ids[order], row_ids[order], vectors[order]
        return cls(dict(ordered), person_ids, row_ids, enrolled_from(ordered, person_ids, vectors))

    def replace(self, names: Sequence[str], people: list[tuple[int, str]], rows: list[tuple]) -> Mirror:
        """This mirror with the people called names replaced by what the server now holds: people (id, name) and
        rows (person id, name, embedding id, vector bytes); a name in neither was removed."""
        d = self.enrolled.embeddings.shape[1]
        changed = set(names)
        gone = [pid for pid, name in self.people.items() if name in changed]
        keep = ~np.isin(self.person_ids, gone)
        kept_people = {pid: name for pid, name in self.people.items() if pid not in gone} | dict(people)
        new = vectors_of([r[3] for r in rows], d)
        return Mirror.build(
            kept_people,
            np.concatenate([self.person_ids[keep], np.array([r[0] for r in rows], np.int64)]),
            np.concatenate([self.row_ids[keep], np.array([r[2] for r in rows], np.int64)]),
            np.concatenate([self.enrolled.embeddings[keep], new]),
        )


def vectors_of(blobs: Sequence[bytes], d: int) -> np.ndarray:
    """Stored vectors (4 * d bytes each) -> (N, d) float32."""
    if set(map(len, blobs)) - {4 * d}:
        raise UserError(f"the gallery is damaged: some embeddings are not {4 * d} bytes")
    return np.frombuffer(b"".join(blobs), dtype="<f4").astype(np.float32).reshape(len(blobs), d)


def load_all(conn: psycopg.Connection, d: int) -> Mirror:
    """Every person and embedding (inside the caller's snapshot), PAGE rows per query: the server joins a page's
    rows into one bytea of fixed-size records (person id, embedding id, vector), copied at once into arrays made
    for the whole gallery, with no Python object per row and one page in flight."""
    people = dict(conn.execute(POSTGRES.matrix_people).fetchall())
    n = conn.execute(COUNT_ROWS).fetchone()[0]
    record = np.dtype([("person_id", ">i8"), ("id", ">i8"), ("vector", "<f4", (d,))])
    person_ids, row_ids, vectors = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, d), np.float32)
    cur, at, last = conn.cursor(binary=True), 0, -1
    while at < n:
        count, last, data = cur.execute(MATRIX_PAGE, (last, min(PAGE, n - at))).fetchone()
        if not count or len(data) != count * record.itemsize:
            raise UserError(f"the gallery is damaged: some embeddings are not {4 * d} bytes")
        page = np.frombuffer(data, record)
        person_ids[at : at + count], row_ids[at : at + count] = page["person_id"], page["id"]
        vectors[at : at + count] = page["vector"]
        at += count
    return Mirror.build(people, person_ids, row_ids, vectors)


class GalleryFollower:
    """A PostgreSQL gallery followed live: matrix() returns the copy in memory at once; a background thread keeps
    it current (LISTEN face_gallery: a change made anywhere is fetched as soon as it commits) and writes the audit
    log from a queue.

    When the server goes away, the kiosk keeps deciding from the copy (status() says offline, with a log line),
    the thread reconnects with backoff and catches up by generation: nothing is read when nothing changed, only the
    people who changed when the change log covers the gap, everything otherwise. Audit entries wait in a bounded
    queue meanwhile. The first load happens in the constructor, so a gallery unreachable at start fails there.
    """

    def __init__(self, store: PostgresGallery) -> None:
        """Take over store (its connection is the thread's from now on; close() closes it)."""
        self.where, self.encoder = store.where, store.encoder
        self._url = store.url
        self._store: PostgresGallery | None = store
        self._lock = threading.Lock()
        self._audit: deque[AuditEntry] = deque()
        self.audit_dropped = 0
        self.full_loads = self.partial_loads = 0
        self._offline_since: float | None = None
        self._why = ""
        self._stop = threading.Event()
        store.listen()
        none = np.empty(0, np.int64)
        self._generation = -1
        self._mirror = Mirror.build({}, none, none, np.empty((0, store.encoder.embedding_size), np.float32))
        self._catch_up(store)
        self._thread = threading.Thread(target=self._run, name="gallery-follower", daemon=True)
        self._thread.start()

    def matrix(self) -> Enrolled:
        return self._mirror.enrolled

    def status(self) -> GalleryStatus:
        enrolled, since = self._mirror.enrolled, self._offline_since
        note = "" if since is None else (f"gallery offline since {time.strftime('%H:%M:%S', time.localtime(since))}"
                                         f": deciding from the cached gallery ({self._why})")
        return GalleryStatus(len(enrolled.names), len(enrolled.embeddings), self._generation, since is None, note)

    def log(self, source: str, decision: str, distance: float, name: str = "") -> None:
        """Queue one decision for the audit log (written by the thread; kept while the server is away)."""
        entry = check_entry(source, decision, distance, name, time.time())
        with self._lock:
            self._audit.append(entry)
            while len(self._audit) > AUDIT_MAX:
                self._audit.popleft()
                self.audit_dropped += 1

    def close(self) -> None:
        """Stop the thread, write what the audit queue holds (when the server is there), close the connection."""
        self._stop.set()
        self._thread.join()
        store = self._store
        if store is not None:
            try:
                self._flush(store)
            except (Unreachable, UserError) as exc:
                log.warning("%s", exc)
            store.close()
        if self._audit or self.audit_dropped:
            log.warning("%d audit entries not written to gallery %s (%d dropped while it was away)",
                        len(self._audit), self.where, self.audit_dropped)

    def _run(self) -> None:
        backoff, checked = Backoff(), time.monotonic()
        while not self._stop.is_set():
            store = self._store
            try:
                if store is None:
                    store = self._store = PostgresGallery.open(self._url, self.encoder, create=False)
                    store.listen()
                    what = self._catch_up(store) or f"up to date at generation {self._generation}, nothing read"
                    log.warning("gallery %s back online after %.1f s: %s", self.where,
                                time.time() - (self._offline_since or time.time()), what)
                    self._offline_since = None
                    backoff.reset()
                self._flush(store)
                if store.wait_change(WAIT_S) or time.monotonic() - checked > CHECK_S:
                    checked = time.monotonic()
                    what = self._catch_up(store)
                    if what:
                        log.info("gallery %s changed: %s", self.where, what)
            except (Unreachable, UserError) as exc:
                self._went_away(exc)
                if backoff.wait(self._stop):
                    return

    def _went_away(self, exc: Exception) -> None:
        self._why = str(exc)
        if self._offline_since is None:
            self._offline_since = time.time()
            status = self.status()
            log.warning("%s; the kiosk decides from its cached gallery (%d people, generation %d) and reconnects",
                        exc, status.people, status.generation)
        else:
            log.debug("still away: %s", exc)
        if self._store is not None:
            self._store.close()
            self._store = None

    def _catch_up(self, store: PostgresGallery) -> str:
        """Bring the mirror to the server's generation. Returns what it read, for the log ("" when nothing)."""
        d = self.encoder.embedding_size
        with store.snapshot() as conn:
            generation = int(conn.execute(POSTGRES.generation).fetchone()[0])
            if generation == self._generation:
                return ""
            changes = conn.execute(CHANGES_SINCE, (self._generation,)).fetchall()
            names = sorted({name for _, name in changes if name is not None})
            covered = {g for g, _ in changes} == set(range(self._generation + 1, generation + 1))
            if self._generation >= 0 and covered and all(name is not None for _, name in changes):
                people = conn.execute(PEOPLE_OF_NAMES, (names,)).fetchall()
                rows = conn.cursor(binary=True).execute(ROWS_OF_NAMES, (names,)).fetchall()
                mirror, what = self._mirror.replace(names, people, rows), f"{len(names)} people updated"
                self.partial_loads += 1
            else:
                check_meta(dict(conn.execute(POSTGRES.meta).fetchall()), f"gallery {self.where}", self.encoder)
                mirror = load_all(conn, d)
                what = f"reloaded {len(mirror.people)} people, {len(mirror.person_ids)} embeddings"
                self.full_loads += 1
        old = self._generation
        self._mirror = mirror  # before the generation: whoever sees the new generation sees its matrix
        self._generation = generation
        return f"generation {old} -> {generation}, {what}"

    def _flush(self, store: PostgresGallery) -> None:
        """Write the queued audit entries in one transaction; on failure they stay queued, in order."""
        with self._lock:
            batch = list(self._audit)
            self._audit.clear()
        if not batch:
            return
        try:
            store.log_many(batch)
        except BaseException:
            with self._lock:
                self._audit.extendleft(reversed(batch))
                while len(self._audit) > AUDIT_MAX:
                    self._audit.popleft()
                    self.audit_dropped += 1
            raise
