"""Where a gallery is: --gallery names an SQLite file (the default) or a PostgreSQL server
(postgresql://USER@HOST:PORT/DATABASE); open_gallery picks the store by the URL's scheme."""

from __future__ import annotations

import os
from pathlib import Path

from edgepipe.apps.face.gallery.sqlite import FaceDB, read_only
from edgepipe.apps.face.gallery.store import GalleryStore
from edgepipe.apps.face.gallery.values import EncoderId
from edgepipe.apps.servers import redact
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import Input

Location = str | os.PathLike  # a file path, or a postgresql:// URL
SCHEMES = ("postgresql", "postgres")  # the URL schemes of a PostgreSQL gallery, as libpq reads them


def on_server(location: Location) -> bool:
    """Whether location is a server URL (scheme://...) rather than a file path; UserError for a scheme no store
    reads."""
    if isinstance(location, os.PathLike) or "://" not in location:
        return False
    if location.partition("://")[0].lower() not in SCHEMES:
        raise UserError(f"--gallery takes an SQLite file path or a {' or '.join(f'{s}://' for s in SCHEMES)} URL, "
                        f"but got {redact(location)}")
    return True


def describe(location: Location) -> str:
    """location as messages show it (a URL without its password)."""
    return redact(str(location)) if on_server(location) else str(location)


def file_inputs(location: Location, what: str = "--gallery") -> list[Input]:
    """The gallery as an input no output may replace: its file (a server gallery is no file here)."""
    return [] if on_server(location) else [Input(what, Path(location))]


def writable(location: Location) -> bool:
    """Whether this process can change the gallery at location: a server's (the server decides), or a file it may
    write in a folder it may write (SQLite writes its journal beside the file)."""
    if on_server(location):
        return True
    path = Path(location)
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def open_gallery(
    location: Location, encoder: EncoderId | None = None, create: bool = True, readonly: bool = False
) -> GalleryStore:
    """The gallery at location: a PostgresGallery for a postgresql:// (or postgres://) URL, else a FaceDB for the
    SQLite file at that path. encoder, create and readonly as in FaceDB.open."""
    if on_server(location):
        from edgepipe.apps.face.gallery.postgres import PostgresGallery

        return PostgresGallery.open(str(location), encoder, create, readonly)
    if not readonly and Path(location).exists() and not writable(location):
        raise read_only(str(location))
    return FaceDB.open(location, encoder, create, readonly)


def gallery_exists(location: Location) -> bool:
    """Whether location holds a gallery: the file exists, or the database has the gallery's tables."""
    if on_server(location):
        from edgepipe.apps.face.gallery.postgres import PostgresGallery

        return PostgresGallery.exists(str(location))
    return Path(location).exists()


def discard_new_gallery(db: GalleryStore) -> None:
    """Remove a gallery this command just created and left empty (a failed import), so a later import into the
    same place is not refused for the encoder of the failed one. Closes db."""
    from edgepipe.apps.face.gallery.postgres import PostgresGallery

    if isinstance(db, PostgresGallery):
        try:
            db.drop_if_empty()
        finally:
            db.close()
        return
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db.where}{suffix}").unlink(missing_ok=True)
