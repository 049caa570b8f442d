"""Real servers for the fleet tests (a pytest plugin, loaded by conftest.py): a throwaway PostgreSQL cluster and a
Mosquitto broker from apps/devservers.py, on free 127.0.0.1 ports, stopped and deleted after. Where Debian's
postgresql or mosquitto is missing the tests skip, unless EDGEPIPE_REQUIRE_SERVERS=1 (.ci/run sets it)."""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from edgepipe.apps.devservers import ThrowawayMosquitto, ThrowawayPostgres, postgres_bin
from edgepipe.postprocess.errors import UserError

PASSWORD = "pw-7Hq2-s3cret"  # the test servers' password: no output may ever show it
_databases = itertools.count()


def need(program: str, available: bool) -> None:
    if not available:
        if os.environ.get("EDGEPIPE_REQUIRE_SERVERS") == "1":
            pytest.fail(f"{program} is not installed (EDGEPIPE_REQUIRE_SERVERS=1): run .ci/run, or apt-get install it")
        pytest.skip(f"{program} is not installed (Debian's package; .ci/run installs it)")


def need_postgres() -> None:
    try:
        postgres_bin()
        found = True
    except UserError:
        found = False
    need("postgresql", found)


def need_mosquitto() -> None:
    need("mosquitto", bool(shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")))


def wait_until(condition: Callable[[], bool], what: str, deadline_s: float, poll_s: float = 0.005) -> float:
    """Seconds until condition() holds; AssertionError naming what after deadline_s (every wait is bounded)."""
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > deadline_s:
            raise AssertionError(f"not within {deadline_s} s: {what}")
        time.sleep(poll_s)
    return time.monotonic() - t0


def with_password(url: str, password: str = PASSWORD) -> str:
    """postgresql://edgepipe@host... -> postgresql://edgepipe:PASSWORD@host..."""
    return url.replace("edgepipe@", f"edgepipe:{password}@", 1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowawayPostgres]:
    """One PostgreSQL server for the session, asking for PASSWORD."""
    need_postgres()
    with ThrowawayPostgres(password=PASSWORD) as server:
        yield server


@pytest.fixture
def pg_url(postgres: ThrowawayPostgres) -> Iterator[str]:
    """The URL (with the password) of a new, empty database on the session's server, dropped after the test."""
    name = f"gallery_{os.getpid()}_{next(_databases)}"
    admin = with_password(postgres.url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_password(postgres.url.rsplit("/", 1)[0] + f"/{name}")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of the test's own (no password), to kill and restart."""
    need_postgres()
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[ThrowawayMosquitto]:
    """One Mosquitto broker for the session, anonymous clients allowed."""
    need_mosquitto()
    with ThrowawayMosquitto() as broker:
        yield broker


@pytest.fixture
def own_mosquitto() -> Iterator[ThrowawayMosquitto]:
    """A broker of the test's own, to kill and restart."""
    need_mosquitto()
    with ThrowawayMosquitto() as broker:
        yield broker
