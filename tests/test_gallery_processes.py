"""The face gallery across processes: SIGKILL during enrollment never leaves half a person, and a kiosk process
identifies while another process enrolls. The child processes import enroll_loop and kiosk_loop from this module."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.postprocess.embeddings import identify
from tests.gallery_data import REPO, D, crops_for, raw, vectors_for


def k_of(name: str) -> int:
    """The embedding count enroll_loop encodes in a name: 'prefix-i-kK' -> K."""
    return int(name.rsplit("-k", 1)[1])


# ---------------------------------------------------------------- child processes (run with sys.executable -c)


def enroll_loop(path: str, sha: str, prefix: str, n: int, pause_s: float = 0.0) -> None:
    """Enroll n people named prefix-i-kK with K = 1 + i % 7 embeddings (and crops) each, one transaction each,
    pause_s apart."""
    with FaceDB.open(path, EncoderId(sha, D, "enc.onnx")) as db:
        print("ready", flush=True)
        for i in range(n):
            name = f"{prefix}-{i}-k{1 + i % 7}"
            db.enroll(name, vectors_for(name, k_of(name)), crops_for(name, k_of(name)), source="enroller")
            time.sleep(pause_s)
    print(n, flush=True)


def kiosk_loop(path: str, sha: str, until_people: int, deadline_s: float, frame_s: float) -> None:
    """Identify the newest person's first embedding and log the decision, one frame every frame_s, until until_people
    are enrolled. Checks every snapshot is whole (rows = the sum of the K in the names). Prints the (people, rows)
    seen."""
    seen: list[tuple[int, int]] = []
    end = time.monotonic() + deadline_s
    with FaceDB.open(path, EncoderId(sha, D, "enc.onnx")) as db:
        print("ready", flush=True)
        while (not seen or seen[-1][0] < until_people) and time.monotonic() < end:
            m = db.matrix()
            if len(m.embeddings) != sum(k_of(n) for n in m.names):
                raise SystemExit(f"half-written snapshot: {len(m.embeddings)} rows for {m.names}")
            if m.names:
                result = identify(vectors_for(m.names[-1], 1), m.gallery, m.labels, threshold=0.0)[0]
                if (result.label, result.distance) != (m.names[-1], 0.0):
                    raise SystemExit(f"identified {result.label} at {result.distance}, expected {m.names[-1]} at 0")
                db.log("kiosk", "accept", result.distance, result.label)
            seen.append((len(m.names), len(m.embeddings)))
            time.sleep(frame_s)
    print(json.dumps(seen), flush=True)


def start_child(call: str) -> subprocess.Popen:
    """Run `from tests.test_gallery_processes import ...; call` in a new interpreter at the repo root; waits for
    'ready'."""
    code = f"from tests.test_gallery_processes import enroll_loop, kiosk_loop; {call}"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise AssertionError(f"child did not start: {line!r} {proc.communicate()[1]}")
    return proc


# ---------------------------------------------------------------- durability across processes


def test_sigkill_during_enrollment_never_leaves_half_a_person(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    rng = random.Random(7)
    delays = [rng.uniform(0.05, 0.6) for _ in range(5)]
    counts = []
    for round_, delay in enumerate(delays):
        child = start_child(f"enroll_loop({str(path)!r}, {encoder.sha256!r}, 'r{round_}', 10**6)")
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        conn = raw(path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()
        with FaceDB.open(path, encoder) as db:
            people = db.people()
            for person in people:
                assert person.n_embeddings == k_of(person.name), f"round {round_}, delay {delay:.2f} s"
                assert np.array_equal(db.embeddings_of(person.name), vectors_for(person.name, k_of(person.name)))
            enrolled = {e.name for e in db.events(limit=10**6) if e.decision == "enroll"}
            assert enrolled == {p.name for p in people}  # the audit entry is in the same transaction
        counts.append(len(people))
    assert counts == sorted(counts) and counts[-1] > 2 * len(delays)  # the children did enroll between kills


def test_kiosk_identifies_while_another_process_enrolls(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    FaceDB.open(path, encoder).close()
    n = 120
    # A frame every 10 ms and an enrollment every 10 ms, both far faster than a camera and an operator. With no
    # pause at all, one writer that re-takes the lock at once keeps the other waiting for seconds (SQLite's busy
    # handler polls with sleeps of up to 100 ms, it does not queue).
    kiosk = start_child(f"kiosk_loop({str(path)!r}, {encoder.sha256!r}, {n}, 60.0, frame_s=0.01)")
    writer = start_child(f"enroll_loop({str(path)!r}, {encoder.sha256!r}, 'w', {n}, pause_s=0.01)")
    w_out, w_err = writer.communicate(timeout=90)
    k_out, k_err = kiosk.communicate(timeout=90)
    assert (writer.returncode, w_err) == (0, "")
    assert (kiosk.returncode, k_err) == (0, ""), k_err  # no "database is locked", no half-written snapshot
    assert w_out.split() == [str(n)]
    seen = [tuple(s) for s in json.loads(k_out)]
    assert seen == sorted(seen)  # people and rows only grow
    assert seen[-1] == (n, sum(1 + i % 7 for i in range(n)))
    assert len(set(seen)) > 5  # the kiosk really ran while the enrollments happened
    with FaceDB.open(path, encoder) as db:
        assert len([e for e in db.events(limit=10**6) if e.decision == "accept"]) > 5
