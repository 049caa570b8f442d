"""A kiosk's live copy of a PostgreSQL gallery (GalleryFollower, a real throwaway server): changes made elsewhere
arrive by notification, the copy equals a full read after any mix of changes, the server killed and restarted
under it, and catching up on changes missed while away (only what changed, or everything when the log has a gap)."""

import time
from collections.abc import Callable

import numpy as np
import psycopg
import pytest

from edgepipe.apps.devservers import ThrowawayPostgres
from edgepipe.apps.face.gallery import EncoderId, GalleryStore, open_gallery
from edgepipe.apps.face.gallery import follow as follow_module
from edgepipe.apps.face.gallery.follow import GalleryFollower
from tests import servers
from tests.gallery_data import vectors_for

DEADLINE_S = 10.0  # bound on waiting for a change to arrive (the benchmark measures how fast it does)


@pytest.fixture(autouse=True)
def no_polling(monkeypatch):
    """Only notifications (and reconnects) bring changes: the periodic check is pushed beyond every test."""
    monkeypatch.setattr(follow_module, "CHECK_S", 3600.0)


def wait_until(condition: Callable[[], bool], what: str) -> float:
    return servers.wait_until(condition, what, DEADLINE_S)


def same_matrix(live: GalleryFollower, store: GalleryStore) -> bool:
    a, b = live.matrix(), store.matrix()
    return (a.names == b.names and np.array_equal(a.person_ids, b.person_ids)
            and np.array_equal(a.embeddings, b.embeddings))


def generation(store: GalleryStore) -> int:
    store.matrix()
    return store.status().generation


def test_changes_made_elsewhere_arrive_by_notification(pg_url: str, encoder: EncoderId):
    with open_gallery(pg_url, encoder) as desk:
        desk.enroll("Ann", vectors_for("Ann", 2))
        live = open_gallery(pg_url, encoder).follow()
        try:
            assert live.matrix().names == ("Ann",) and live.full_loads == 1
            desk.enroll("Bob", vectors_for("Bob", 3))
            wait_until(lambda: live.matrix().names == ("Ann", "Bob"), "Bob enrolled")
            desk.remove("Ann")
            wait_until(lambda: live.matrix().names == ("Bob",), "Ann removed")
            assert np.array_equal(live.matrix().embeddings, vectors_for("Bob", 3))
            assert (live.full_loads, live.partial_loads) == (1, 2)  # each change read alone, not the whole gallery
            status = live.status()
            assert (status.people, status.embeddings, status.generation, status.online) == (1, 3, 3, True)
        finally:
            live.close()


def test_the_copy_equals_a_full_read_after_any_mix_of_changes(pg_url: str, encoder: EncoderId, tmp_path):
    rng = np.random.default_rng(5)
    names = [f"P{i}" for i in range(8)]
    with open_gallery(pg_url, encoder) as desk:
        desk.enroll("P0", vectors_for("P0", 1))
        live = open_gallery(pg_url, encoder).follow()
        try:
            for step in range(40):
                name = names[rng.integers(len(names))]
                enrolled = {p.name for p in desk.people()}
                if name in enrolled and rng.random() < 0.4:
                    desk.remove(name)
                else:
                    desk.enroll(name, vectors_for(f"{name}-{step}", int(rng.integers(1, 4))))
                if step == 20:  # an import that replaces people: several names in one generation
                    desk.export_json(tmp_path / "g.json")
                    desk.import_json(tmp_path / "g.json", replace=True)
                wait_until(lambda: live.status().generation == generation(desk), f"step {step}")
                assert same_matrix(live, desk), f"step {step}"
            assert live.full_loads == 1
        finally:
            live.close()


def test_a_server_killed_and_restarted_under_the_follower(own_postgres: ThrowawayPostgres, encoder: EncoderId):
    url = own_postgres.url
    with open_gallery(url, encoder) as desk:
        desk.enroll("Ann", vectors_for("Ann", 2))
    live = open_gallery(url, encoder).follow()
    try:
        before = live.matrix()
        own_postgres.kill()
        wait_until(lambda: not live.status().online, "offline")
        assert "deciding from the cached gallery" in live.status().note
        assert live.matrix() is before  # decisions go on from the copy
        live.log("door", "welcome", 0.1, "Ann")  # queued while the server is away
        own_postgres.start()
        wait_until(lambda: live.status().online, "back online")
        assert (live.full_loads, live.partial_loads) == (1, 0)  # nothing changed: nothing read again
        with open_gallery(url, encoder) as desk:
            wait_until(lambda: any(e.decision == "welcome" for e in desk.events()), "queued audit entry written")
            desk.enroll("Bob", vectors_for("Bob", 1))
            wait_until(lambda: live.matrix().names == ("Ann", "Bob"), "enrolled after the restart")
    finally:
        live.close()


def cut_followers(url: str) -> None:
    """End every other connection to the test's database (the follower's): it must reconnect."""
    with psycopg.connect(url, autocommit=True) as conn:
        ended = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
        assert ended.fetchall(), "no follower connection to end"


def test_changes_missed_while_away_are_caught_up_by_generation(pg_url: str, encoder: EncoderId):
    with open_gallery(pg_url, encoder) as desk:
        desk.enroll("Ann", vectors_for("Ann", 2))
    live = open_gallery(pg_url, encoder).follow()
    try:
        cut_followers(pg_url)
        with open_gallery(pg_url, encoder) as desk:  # while the follower waits to reconnect: no notification
            desk.enroll("Bob", vectors_for("Bob", 1))
        wait_until(lambda: live.matrix().names == ("Ann", "Bob"), "caught up after the reconnect")
        assert (live.full_loads, live.partial_loads) == (1, 1)  # only Bob was read
        cut_followers(pg_url)
        with open_gallery(pg_url, encoder) as desk:
            desk.enroll("Cleo", vectors_for("Cleo", 1))
            desk.enroll("Dev", vectors_for("Dev", 1))
            with psycopg.connect(pg_url, autocommit=True) as conn:  # the log lost a generation: read everything
                conn.execute("DELETE FROM face_gallery.changes WHERE name = 'Cleo'")
            wait_until(lambda: live.matrix().names == ("Ann", "Bob", "Cleo", "Dev"), "reloaded")
            assert (live.full_loads, live.partial_loads) == (2, 1)
            assert same_matrix(live, desk)
    finally:
        live.close()


def test_audit_entries_keep_their_time_and_order(pg_url: str, encoder: EncoderId):
    with open_gallery(pg_url, encoder) as desk:
        live = open_gallery(pg_url, encoder).follow()
        t0 = time.time()
        for i in range(5):
            live.log("door", "welcome", 0.1 * i, f"P{i}")
        live.close()  # writes what is queued
        entries = desk.events(limit=5)
    assert [e.name for e in entries] == ["P4", "P3", "P2", "P1", "P0"]
    assert all(t0 <= e.time <= time.time() for e in entries)


def test_the_first_load_reads_page_after_page(pg_url: str, encoder: EncoderId, monkeypatch):
    """Pages of 3 rows over 11 rows whose people were enrolled out of order: the copy equals the store's matrix."""
    monkeypatch.setattr(follow_module, "PAGE", 3)
    with open_gallery(pg_url, encoder) as desk:
        for name, k in (("Ann", 2), ("Bob", 4), ("Ann", 3), ("Cleo", 1), ("Bob", 1)):
            desk.enroll(name, vectors_for(f"{name}{k}", k))
        live = open_gallery(pg_url, encoder).follow()
        try:
            assert same_matrix(live, desk) and live.matrix().person_ids.tolist() == [0] * 5 + [1] * 5 + [2]
        finally:
            live.close()
