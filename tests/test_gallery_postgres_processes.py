"""A PostgreSQL gallery across processes (a real throwaway server): SIGKILL during enrollment never leaves half a
person, and writers in several processes are serialized, each change its own generation. The child processes
import enroll_many from this module."""

import random
import signal
import subprocess
import time

import numpy as np
import psycopg

from edgepipe.apps.face.gallery import EncoderId, open_gallery
from tests.gallery_data import D, crops_for, vectors_for
from tests.test_gallery_processes import k_of, start_child


def enroll_many(url: str, sha: str, prefix: str, n: int) -> None:
    """Enroll n people named prefix-i-kK with K = 1 + i % 7 embeddings and crops, one transaction each."""
    with open_gallery(url, EncoderId(sha, D, "enc.onnx")) as db:
        print("ready", flush=True)
        for i in range(n):
            name = f"{prefix}-{i}-k{1 + i % 7}"
            db.enroll(name, vectors_for(name, k_of(name)), crops_for(name, k_of(name)), source="enroller")
    print(n, flush=True)


def start_enroller(call: str) -> subprocess.Popen:
    """A child process running enroll_many (call: its arguments), once it is ready."""
    return start_child(f"from tests.test_gallery_postgres_processes import enroll_many; enroll_many({call})")


def test_sigkill_during_enrollment_never_leaves_half_a_person(pg_url: str, encoder: EncoderId):
    open_gallery(pg_url, encoder).close()
    rng = random.Random(11)
    counts = []
    for round_, delay in enumerate(rng.uniform(0.1, 0.6) for _ in range(4)):
        child = start_enroller(f"{pg_url!r}, {encoder.sha256!r}, 'r{round_}', 10**6")
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        with open_gallery(pg_url, encoder) as db:
            m = db.matrix()  # everyone whole: exactly their K rows, as enrolled, in enrollment order
            whole = [vectors_for(name, k_of(name)) for name in m.names]
            assert np.array_equal(m.embeddings, np.concatenate([np.empty((0, D), np.float32), *whole])), round_
            logged = {e.name for e in db.events(limit=10**6) if e.decision == "enroll"}
        assert logged == set(m.names), f"delay {delay:.2f} s"  # the audit entry is in the same transaction
        counts.append(len(m.names))
    assert counts == sorted(counts) and counts[-1] > 8  # the children did enroll between kills


def test_writers_in_several_processes_take_turns(pg_url: str, encoder: EncoderId):
    open_gallery(pg_url, encoder).close()
    n = 30
    writers = [start_enroller(f"{pg_url!r}, {encoder.sha256!r}, 'w{j}', {n}") for j in range(3)]
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert (w.returncode, out.split(), err) == (0, [str(n)], "")
    with open_gallery(pg_url, encoder) as db:
        assert len(db.people()) == 3 * n
        assert all(p.n_embeddings == k_of(p.name) for p in db.people())
    with psycopg.connect(pg_url) as conn:
        generation = conn.execute("SELECT value FROM face_gallery.meta WHERE key = 'generation'").fetchone()[0]
        changes = conn.execute("SELECT generation, name FROM face_gallery.changes ORDER BY generation").fetchall()
    assert generation == 3 * n  # one generation per enrollment: none lost to a concurrent writer
    assert [g for g, _ in changes] == list(range(1, 3 * n + 1))
    assert sorted(name for _, name in changes) == sorted(f"w{j}-{i}-k{1 + i % 7}" for j in range(3) for i in range(n))
