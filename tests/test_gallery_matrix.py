"""The face gallery's embedding matrix (against a brute-force identify, cached until any connection changes the
gallery), its decision threshold with the calibration, and its audit log."""

import math
import time
from pathlib import Path

import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.postprocess.embeddings import identify
from tests.gallery_data import D, vectors_for

# ---------------------------------------------------------------- matrix


def test_matrix_of_an_empty_gallery(db: FaceDB):
    m = db.matrix()
    assert (m.embeddings.shape, m.embeddings.dtype) == ((0, D), np.float32)
    assert (m.person_ids.shape, m.person_ids.dtype) == ((0,), np.int64)
    assert m.names == () and m.labels == ()
    assert identify(vectors_for("q", 1), m.gallery, m.labels, 1.0)[0].label == "unknown"


def test_matrix_matches_a_brute_force_identify(db: FaceDB):
    enrolled = [("Ann", 3), ("Bob", 1), ("Cleo", 4), ("Dev", 2)]
    for name, k in enrolled:
        db.enroll(name, vectors_for(name, k))
    db.enroll("Bob", vectors_for("Bob again", 2))  # Bob's rows come after his first ones, before Cleo's
    m = db.matrix()
    expected_rows = [vectors_for("Ann", 3), vectors_for("Bob", 1), vectors_for("Bob again", 2)]
    expected_rows += [vectors_for("Cleo", 4), vectors_for("Dev", 2)]
    assert np.array_equal(m.embeddings, np.concatenate(expected_rows))
    assert m.person_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert m.names == ("Ann", "Bob", "Cleo", "Dev")
    assert not m.embeddings.flags.writeable and not m.person_ids.flags.writeable
    rng = np.random.default_rng(0)
    queries = np.concatenate([m.embeddings + 0.3 * rng.standard_normal(m.embeddings.shape), rng.normal(size=(5, D))])
    results = identify(queries.astype(np.float32), m.gallery, m.labels, threshold=4.0)
    for q, result in zip(queries.astype(np.float32).astype(np.float64), results, strict=True):
        d = ((m.embeddings.astype(np.float64) - q) ** 2).sum(axis=1)  # brute force over the rows
        nearest = int(np.argmin(d))
        assert result.distance == pytest.approx(d[nearest], rel=1e-9)
        assert result.label == (m.names[m.person_ids[nearest]] if d[nearest] <= 4.0 else "unknown")


def test_matrix_is_cached_until_any_connection_changes_the_gallery(tmp_path: Path, encoder: EncoderId):
    path = tmp_path / "g.db"
    with FaceDB.open(path, encoder) as kiosk, FaceDB.open(path, encoder) as desk:
        desk.enroll("Ann", vectors_for("Ann", 2))
        first = kiosk.matrix()
        assert kiosk.matrix() is first  # nothing changed: no rebuild
        kiosk.log("kiosk", "accept", 0.0, "Ann")
        kiosk.set_threshold(0.7)
        assert kiosk.matrix() is first  # the audit log and the threshold do not touch the embeddings
        desk.enroll("Bob", vectors_for("Bob", 1))  # another connection enrolls
        second = kiosk.matrix()
        assert second is not first and second.names == ("Ann", "Bob")
        desk.remove("Ann")
        assert kiosk.matrix().names == ("Bob",)
        kiosk.enroll("Cleo", vectors_for("Cleo", 1))  # its own write too
        assert kiosk.matrix().names == ("Bob", "Cleo")


# ---------------------------------------------------------------- threshold and audit log


def test_threshold_with_its_calibration(tmp_path: Path, db: FaceDB):
    with pytest.raises(ValueError, match="no decision threshold yet: calibrate one"):
        _ = db.threshold
    before = time.time()
    db.set_threshold(np.float32(0.75), far=1e-3, eer=0.02)
    with FaceDB.open(db.path) as other:  # stored, not just remembered
        assert other.threshold == pytest.approx(0.75)
        t = other.decision_threshold
        assert (t.far, t.eer) == (1e-3, 0.02) and before <= t.when <= time.time()
    db.set_threshold(0.5)
    assert (db.threshold, db.decision_threshold.far, db.decision_threshold.eer) == (0.5, None, None)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-0.1,), "threshold must be a number >= 0"),
        ((math.nan,), "threshold must be a number >= 0"),
        ((math.inf,), "threshold must be finite"),
        (("0.5",), "threshold must be a number"),
        ((0.5, 1.5), r"far must be a rate in \[0, 1\]"),
        ((0.5, None, -0.1), r"eer must be a rate in \[0, 1\]"),
    ],
)
def test_bad_thresholds(db: FaceDB, args, error: str):
    with pytest.raises(ValueError, match=error):
        db.set_threshold(*args)


def test_audit_log(db: FaceDB):
    db.enroll("Ann", vectors_for("Ann", 1), source="desk")
    db.log("cam0", "accept", 0.25, "Ann")
    db.log("cam1", "unknown", math.inf)  # an empty gallery's distance
    db.remove("Ann", source="desk")
    events = db.events()
    assert [(e.source, e.decision, e.name) for e in events] == [
        ("desk", "remove", "Ann"),
        ("cam1", "unknown", ""),
        ("cam0", "accept", "Ann"),
        ("desk", "enroll", "Ann"),
    ]
    assert [e.distance for e in events[1:3]] == [math.inf, 0.25]
    assert math.isnan(events[0].distance) and math.isnan(events[3].distance)
    assert [e.time for e in events] == sorted((e.time for e in events), reverse=True)
    assert [e.decision for e in db.events(limit=2)] == ["remove", "unknown"]
    for bad, error in ((math.nan, "distance must be a number >= 0"), (-1.0, "distance must be a number >= 0")):
        with pytest.raises(ValueError, match=error):
            db.log("cam0", "accept", bad, "Ann")
    with pytest.raises(ValueError, match="decision must be a non-empty string"):
        db.log("cam0", "", 0.1)
    with pytest.raises(ValueError, match="limit must be an integer >= 1"):
        db.events(limit=0)
