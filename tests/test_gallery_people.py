"""People in a face gallery (apps/face/gallery/): the name rule and its refusals, names kept out of SQL text,
enrolling embeddings exactly as given, refused embeddings and crops, listing and removing people."""

import ast
import unicodedata

import numpy as np
import pytest

from edgepipe.apps.face.gallery import FaceDB, check_name
from tests.gallery_data import REPO, D, crops_for, raw, vectors_for

# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name",
    [
        "Ann",
        "José Ñúñez",  # accents
        "李小龙",  # CJK
        "प्रिया",  # Devanagari: vowel signs are combining marks
        "O'Brien-Smith Jr.",  # every allowed punctuation but _
        "agent_007",
        "A" * 64,  # the longest allowed
    ],
)
def test_valid_names_round_trip(db: FaceDB, name: str):
    assert check_name(name) == name
    assert db.enroll(name, vectors_for(name, 1)).name == name
    assert [p.name for p in db.people()] == [name]


def test_names_are_stored_in_nfc(db: FaceDB):
    decomposed = unicodedata.normalize("NFD", "Zoë")
    assert len(decomposed) == 4
    db.enroll(decomposed, vectors_for("Zoë", 1))
    assert [p.name for p in db.people()] == ["Zoë"]
    assert db.remove(decomposed) == 1  # found under either form


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "got 0 characters"),  # empty
        ("A" * 65, "got 65 characters"),  # too long
        (" Ann", "remove the outer spaces"),  # leading space
        ("Ann ", "remove the outer spaces"),  # trailing space
        ("a/b", "character '/' at 1"),
        ("Bob; DROP TABLE people", "character ';' at 3"),
        ("tab\there", r"character '\\t' at 3"),
        ("smile 😀", "at 6"),  # emoji
        (42, "must be a string"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(db: FaceDB, name, problem: str):
    with pytest.raises(ValueError, match=problem) as info:
        db.enroll(name, vectors_for("x", 1))
    assert "letters (any script), digits, spaces and - ' . _" in str(info.value)
    assert db.people() == []


def test_names_go_through_parameters_not_sql_text(db: FaceDB):
    db.enroll("O'Brien", vectors_for("O'Brien", 1))
    db.enroll("Ann", vectors_for("Ann", 1))
    with pytest.raises(ValueError, match="no person named"):
        db.remove("x' OR '1'='1")  # lookups take any string: an injection would delete everyone
    with pytest.raises(ValueError, match="no person named"):
        db.embeddings_of("Ann'; DELETE FROM embeddings; --")
    assert [(p.name, p.n_embeddings) for p in db.people()] == [("O'Brien", 1), ("Ann", 1)]


def test_no_sql_is_built_by_string_formatting():
    trees = [ast.parse(path.read_text()) for path in (REPO / "apps" / "face" / "gallery").glob("*.py")]
    calls = [
        node
        for tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr.startswith("execute")
    ]
    assert len(calls) > 20
    formatted = [c.lineno for c in calls if c.args and isinstance(c.args[0], (ast.JoinedStr, ast.BinOp, ast.Call))]
    assert formatted == []


# ---------------------------------------------------------------- enroll, people, remove, embeddings_of


def test_enroll_stores_embeddings_exactly_as_given(db: FaceDB):
    first, more = vectors_for("Ann", 3), vectors_for("Ann more", 2)
    ann = db.enroll("Ann", first, source="desk")
    assert (ann.name, ann.n_embeddings) == ("Ann", 3)
    again = db.enroll("Ann", more.astype(np.float64))  # float64 in: stored as its float32 values
    assert (again.n_embeddings, again.created) == (5, ann.created)  # added to the same person
    stored = db.embeddings_of("Ann")
    assert stored.dtype == np.float32
    assert np.array_equal(stored, np.concatenate([first, more]))  # bit-exact, not re-normalised
    assert np.linalg.norm(stored, axis=1).max() > 2


@pytest.mark.parametrize(
    ("embeddings", "error"),
    [
        (np.zeros((2, D + 1), np.float32), r"shape \(K, 16\) with K >= 1 .* but got shape \(2, 17\)"),  # wrong D
        (np.zeros((0, D), np.float32), r"but got shape \(0, 16\)"),  # no rows
        (np.zeros(D, np.float32), r"but got shape \(16,\)"),  # one vector, not (1, D)
        (np.zeros((2, D), np.int64), "must be a float array"),
        (np.where(np.arange(2 * D).reshape(2, D) == 20, np.nan, 0.0), r"rows \[1\] hold NaN"),
        (np.full((1, D), 1e39), r"rows \[0\] hold NaN, inf or values beyond 3.4e38"),  # overflows float32
    ],
)
def test_enroll_rejects_bad_embeddings(db: FaceDB, embeddings: np.ndarray, error: str):
    with pytest.raises(ValueError, match=error):
        db.enroll("Ann", embeddings)
    assert db.people() == []


def test_enroll_rejects_bad_crops_and_stores_nothing(db: FaceDB):
    with pytest.raises(ValueError, match=r"one image per embedding \(2\), but got 1"):
        db.enroll("Ann", vectors_for("Ann", 2), crops=crops_for("Ann", 1))
    with pytest.raises(ValueError, match=r"crops\[1\] must be a \(H, W\) gray or \(H, W, 3\) BGR uint8"):
        db.enroll("Ann", vectors_for("Ann", 2), crops=[crops_for("Ann", 1)[0], np.zeros((8, 8, 3), np.float32)])
    assert db.people() == []
    assert raw(db.path).execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0


def test_people_and_remove_with_close_names(db: FaceDB):
    for name, k in (("Alice", 2), ("Alicia", 3), ("Bob", 1)):
        db.enroll(name, vectors_for(name, k), crops_for(name, k))
    assert [(p.name, p.n_embeddings) for p in db.people()] == [("Alice", 2), ("Alicia", 3), ("Bob", 1)]
    with pytest.raises(ValueError, match=r"no person named 'Alic' .*close names: 'Alice', 'Alicia'"):
        db.remove("Alic")
    with pytest.raises(ValueError, match=r"no person named 'Zed' .*no close name among the 3 enrolled"):
        db.embeddings_of("Zed")
    assert db.remove("Alicia") == 3
    assert [p.name for p in db.people()] == ["Alice", "Bob"]
    conn = raw(db.path)  # the cascade (foreign keys on) removed the rows, crops included
    assert conn.execute("SELECT COUNT(*), COUNT(crop) FROM embeddings").fetchone() == (3, 3)
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
