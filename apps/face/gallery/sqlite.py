"""FaceDB: the face gallery in one SQLite file (WAL mode), every change one transaction."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from edgepipe.apps.face.gallery.schema import (
    BUSY_TIMEOUT_S,
    SQLITE,
    bump_generation,
    check_gallery_path,
    connect,
    create_schema,
    read_meta,
    transaction,
)
from edgepipe.apps.face.gallery.store import GalleryStore
from edgepipe.apps.face.gallery.values import EncoderId, check_meta
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import OutputError


class FaceDB(GalleryStore):
    """A face gallery in one SQLite file (WAL mode: kiosks read while an operator enrolls).

    Every change is one transaction: a process killed at any moment leaves the gallery as it was before or after.
    Open with FaceDB.open(...), use as a context manager or call close().
    """

    sql = SQLITE

    def __init__(self, path: Path, conn: sqlite3.Connection, encoder: EncoderId, readonly: bool) -> None:
        """Use FaceDB.open: it checks the file, the schema version and the encoder."""
        super().__init__(str(path), conn, encoder, readonly)
        self.path = path

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
            meta = read_meta(conn, path)
            if not meta:
                if not (create and not readonly):
                    raise UserError(f"{path} is an empty SQLite file, not a face gallery: enroll someone into it "
                                    "first, or check the path")
                meta = create_schema(conn, path, encoder)
            stored = check_meta(meta, f"gallery {path}", encoder)
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")  # each commit is on disk before it returns
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, stored, readonly)

    def close(self) -> None:
        """Close the connection (a kiosk's other connections are unaffected)."""
        self._conn.close()

    def __enter__(self) -> FaceDB:
        return self

    def _begin_write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (the lock taken at BEGIN, so it never fails half-way for lack of it)."""
        return transaction(self._conn, "BEGIN IMMEDIATE")

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: every query inside sees the same snapshot."""
        return transaction(self._conn, "BEGIN")

    def _changed(self, conn: sqlite3.Connection, names: Sequence[str] | None) -> None:
        """Mark the embeddings as changed: every FaceDB's cached matrix() is rebuilt on its next call."""
        bump_generation(conn)


def explain(exc: sqlite3.Error, where: str) -> Exception:
    """SQLite's own error on the gallery file where, told as it is: a read-only, unopenable, damaged or foreign file
    (UserError: exit 2, the gallery as it was), or a lock held too long, a full disk or an I/O error (OutputError:
    the run failed, exit 1; every change is one transaction, so the gallery is as it was before the command)."""
    name = getattr(exc, "sqlite_errorname", "")
    if name.startswith("SQLITE_READONLY"):
        return read_only(where)
    if name.startswith("SQLITE_CANTOPEN"):
        return UserError(f"cannot open gallery {where} ({exc}): check that its folder exists and can be read")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return UserError(f"gallery {where} is damaged ({exc}): restore it from a copy or a `face export` file")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return OutputError(f"gallery {where} stayed locked by another process for {BUSY_TIMEOUT_S:g} s: retry when "
                           "it is done; nothing was changed")
    if name.startswith("SQLITE_FULL"):
        return OutputError(f"the disk holding gallery {where} is full (or the file may not grow): free space and "
                           "retry; the gallery is as it was before this command")
    if name.startswith("SQLITE_IOERR"):
        return OutputError(f"an I/O error on gallery {where} ({exc}): check the disk; the last change was not made")
    return UserError(f"gallery {where}: {exc} (SQLite): retry, or restore the gallery from a copy or an export")


def read_only(where: str) -> UserError:
    """The gallery file where cannot be written (the file, its folder or its disk)."""
    return UserError(f"gallery {where} is read-only (the file, its folder or its disk): `face list`, `export` and "
                     "`identify` read it as it is; changing it needs write access")
