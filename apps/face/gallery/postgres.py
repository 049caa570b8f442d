"""PostgresGallery: the face gallery on a PostgreSQL server (psycopg 3), shared by many kiosks; every change one
transaction that notifies them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from edgepipe.apps.face.gallery.pg_schema import (
    DROP_EMPTY,
    LISTEN,
    POSTGRES,
    READ_SNAPSHOT,
    WRITE_LOCK,
    bump_generation,
    create_schema,
    read_meta,
)
from edgepipe.apps.face.gallery.store import GalleryStore
from edgepipe.apps.face.gallery.values import EncoderId, check_meta
from edgepipe.apps.servers import Unreachable, redact, scrub
from edgepipe.postprocess.errors import UserError

if TYPE_CHECKING:
    from edgepipe.apps.face.gallery.follow import GalleryFollower

CONNECT_TIMEOUT_S = 5  # unless the URL or PGCONNECT_TIMEOUT says otherwise
# TCP keepalives, so a kiosk idle on LISTEN notices a server that vanished without closing the connection.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
# What libpq says when it reached the server and was refused, and the fix; anything else: the server is unreachable.
REFUSALS = (
    ("password authentication failed", "check the user and password (in the URL, PGPASSWORD or ~/.pgpass)"),
    ("no password supplied", "give the password (PGPASSWORD, ~/.pgpass, or user:password@ in the URL)"),
    ("authentication failed", "check the user and how the server authenticates it (pg_hba.conf)"),
    ("no pg_hba.conf entry", "the server does not accept this user from here: see its pg_hba.conf"),
    ("does not exist", "check the user and database names (create the database with createdb)"),
    ("invalid", "check the URL: postgresql://USER@HOST:PORT/DATABASE"),
    ("failed to resolve host", "check the host name in the URL"),
)


def url_password(url: str) -> str | None:
    """The password written in a URL, to keep it out of messages (None when none, or unreadable)."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def connection_params(url: str) -> dict[str, Any]:
    """libpq parameters of a postgresql:// URL, with edgepipe's defaults where neither the URL nor the PG*
    environment sets them; UserError for a URL libpq cannot read (the message never holds the password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        why = reason(exc, url_password(url))
        raise UserError(f"--gallery {redact(url)} is not a PostgreSQL URL libpq reads ({why}): use "
                        "postgresql://USER@HOST:PORT/DATABASE") from None
    for port in str(params.get("port", "5432")).split(","):
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise UserError(f"--gallery {redact(url)}: port must be a number in 1..65535, but got {port!r}")
    if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
        params["connect_timeout"] = CONNECT_TIMEOUT_S
    if "application_name" not in params and "PGAPPNAME" not in os.environ:
        params["application_name"] = "edgepipe"
    for key, value in KEEPALIVES.items():
        params.setdefault(key, value)
    return params


def reason(exc: BaseException, password: str | None) -> str:
    """libpq's message in one line, without the connection preamble or the password."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text.rsplit(" failed: ", 1)[-1]
    return scrub(re.sub(r"^(FATAL|ERROR):\s+", "", text), password)


def connect(url: str) -> psycopg.Connection:
    """An autocommit connection to the gallery's server. UserError when the server refuses (wrong password, no
    such database or user, a bad URL); Unreachable when it does not answer."""
    params = connection_params(url)
    try:
        return psycopg.connect(make_conninfo("", **params), autocommit=True)
    except psycopg.OperationalError as exc:
        why = reason(exc, params.get("password"))
        for words, fix in REFUSALS:
            if words in why:
                raise UserError(f"gallery {redact(url)}: {why}: {fix}") from None
        raise Unreachable(f"gallery {redact(url)} is unreachable ({why}): is the PostgreSQL server running "
                          "and listening there?") from None


@contextmanager
def database_errors(where: str, password: str | None) -> Iterator[None]:
    """psycopg's errors as edgepipe's: a lost connection is Unreachable, anything else the server refuses is a
    UserError naming the gallery."""
    try:
        yield
    except psycopg.OperationalError as exc:
        raise Unreachable(f"gallery {where}: the connection was lost ({reason(exc, password)}): is the PostgreSQL "
                          "server running?") from None
    except psycopg.Error as exc:
        raise UserError(f"gallery {where}: {reason(exc, password)} (PostgreSQL)") from None


class PostgresGallery(GalleryStore):
    """A face gallery in a PostgreSQL database (its face_gallery schema), shared by many processes and machines.

    Every change is one transaction, taken one at a time, that bumps the gallery's generation, records which
    people it changed and notifies the kiosks (LISTEN face_gallery; see follow.GalleryFollower). Open with
    PostgresGallery.open(url, ...), use as a context manager or call close().
    """

    sql = POSTGRES

    def __init__(self, url: str, conn: psycopg.Connection, encoder: EncoderId, readonly: bool) -> None:
        """Use PostgresGallery.open: it connects, checks the schema version and the encoder."""
        super().__init__(redact(url), conn, encoder, readonly)
        self.url = url
        self._password = connection_params(url).get("password")

    @classmethod
    def open(
        cls, url: str, encoder: EncoderId | None = None, create: bool = True, readonly: bool = False
    ) -> PostgresGallery:
        """Open the gallery in the database url names, creating its tables (with encoder) on first use when create.

        encoder: the model the caller will embed faces with; UserError when the gallery was enrolled with another.
        None: open with the stored encoder. readonly: no writes.
        """
        where = redact(url)
        conn = connect(url)
        try:
            with database_errors(where, connection_params(url).get("password")):
                meta = read_meta(conn)
                if not meta:
                    if not create or readonly:
                        raise UserError(f"no face gallery in {where}: check the URL, or enroll people first")
                    meta = create_schema(conn, where, encoder)
            stored = check_meta(meta, f"gallery {where}", encoder)
        except BaseException:
            conn.close()
            raise
        return cls(url, conn, stored, readonly)

    @staticmethod
    def exists(url: str) -> bool:
        """Whether the database url names holds a gallery."""
        with connect(url) as conn, database_errors(redact(url), connection_params(url).get("password")):
            return bool(read_meta(conn))

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PostgresGallery:
        return self

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection]:
        """A read-only transaction on one snapshot (repeatable read)."""
        with database_errors(self.where, self._password), self._conn.transaction():
            self._conn.execute(READ_SNAPSHOT)
            yield self._conn

    @contextmanager
    def _begin_write(self) -> Iterator[psycopg.Connection]:
        """A write transaction holding the gallery's write lock (WRITE_LOCK) from its start."""
        with database_errors(self.where, self._password), self._conn.transaction():
            self._conn.execute(WRITE_LOCK)
            yield self._conn

    def snapshot(self) -> AbstractContextManager[psycopg.Connection]:
        """A read-only transaction on one snapshot, for a follower's queries."""
        return self._read()

    def listen(self) -> None:
        """Receive the notification every change sends (see wait_change)."""
        with database_errors(self.where, self._password):
            self._conn.execute(LISTEN)

    def wait_change(self, timeout: float) -> bool:
        """Wait up to timeout seconds for a change notification (after listen()). Returns whether one came."""
        with database_errors(self.where, self._password):
            return any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))

    def follow(self) -> GalleryFollower:
        """A follower that keeps this gallery's matrix in memory, current, for a kiosk; it takes over this store."""
        from edgepipe.apps.face.gallery.follow import GalleryFollower

        return GalleryFollower(self)

    def _meta_value(self, value: Any) -> Any:
        return Jsonb(value)

    def _changed(self, conn: psycopg.Connection, names: Sequence[str] | None) -> None:
        bump_generation(conn, names)

    def drop_if_empty(self) -> bool:
        """Drop the gallery's tables when nobody is enrolled (an import that failed into a new gallery). Returns
        whether it did."""
        with self._begin_write() as conn:
            if conn.execute(POSTGRES.names).fetchone() is not None:
                return False
            conn.execute(DROP_EMPTY)
        return True
