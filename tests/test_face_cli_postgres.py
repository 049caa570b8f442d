"""`edgepipe face` with --gallery postgresql://... on a real throwaway server: every subcommand, moving a gallery
from SQLite to PostgreSQL and back, the password from PGPASSWORD or a .pgpass file, and one clear line (never the
password) for bad URLs, wrong passwords, missing databases and a server that does not answer."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgepipe.apps.devservers import free_port
from edgepipe.apps.face.gallery import open_gallery
from tests.face_commands import EXACT, NAMES, face, face_json, models
from tests.gallery_data import REPO
from tests.servers import PASSWORD, with_password


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch, tmp_path):
    """Passwords come only from what each test gives: no PGPASSWORD, no ~/.pgpass."""
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def no_password(*texts: str) -> None:
    for text in texts:
        assert PASSWORD not in text


def one_line(capsys, code: int, *argv) -> str:
    """Run `edgepipe face ARGV`, expect exit code code and one line on stderr without the password; returns it."""
    got, out, err = face(capsys, *argv)
    assert (got, out, err.count("\n")) == (code, "", 1), err
    no_password(err)
    return err


def test_every_subcommand_on_a_postgres_gallery(capsys, caplog, photos, pg_url, tmp_path):
    where = pg_url.replace(f":{PASSWORD}", "")
    enrolled = face_json(capsys, "enroll", "--name", "Alice", "--images", *photos["Alice"], *models(pg_url))
    assert enrolled["total"] == len(photos["Alice"])
    face_json(capsys, "enroll", "--name", "Bob", "--images", *photos["Bob"], *models(pg_url))
    listing = face_json(capsys, "list", "--gallery", pg_url)
    assert listing["gallery"] == where  # shown without its password
    assert [(p["name"], p["n_embeddings"]) for p in listing["people"]] == [("Alice", len(photos["Alice"])),
                                                                         ("Bob", len(photos["Bob"]))]
    found = face_json(capsys, "identify", "--image", photos["Bob"][0], "--threshold", "0.5", *models(pg_url))
    assert found["name"] == "Bob" and found["distance"] < EXACT
    verdict = face_json(capsys, "verify", "--name", "Alice", "--image", photos["Bob"][0], "--threshold", "1e-6",
                        *models(pg_url), code=1)
    assert verdict["match"] is False
    dataset = tmp_path / "people"
    for name in NAMES:
        (dataset / name).mkdir(parents=True)
        for i, src in enumerate([*photos[name], photos[name][0]]):
            shutil.copy(src, dataset / name / f"{i}.png")
    report = face_json(capsys, "calibrate", "--dataset", dataset, "--far", "0.05", *models(pg_url))
    assert report["gallery"] == where
    verdict = face_json(capsys, "verify", "--name", "Alice", "--image", photos["Alice"][0], *models(pg_url))
    assert verdict["match"] and verdict["threshold"] == report["calibration"]["threshold"]
    assert verdict["threshold_from"] == f"gallery {where}"
    removed = face_json(capsys, "remove", "Alice", "--gallery", pg_url)
    assert removed["people"] == ["Alice"]
    with open_gallery(pg_url) as db:
        decisions = [e.decision for e in db.events(limit=10)]
    assert decisions[:4] == ["remove", "match", "no match", "identified"]
    no_password(caplog.text)


def test_a_gallery_moves_from_sqlite_to_postgres_and_back(capsys, photos, pg_url, tmp_path):
    sqlite, back = tmp_path / "faces.db", tmp_path / "back.db"
    for name in NAMES[:3]:
        face_json(capsys, "enroll", "--name", name, "--images", *photos[name], *models(sqlite))
    face_json(capsys, "export", tmp_path / "a.json", "--gallery", sqlite)
    moved = face_json(capsys, "import", tmp_path / "a.json", "--gallery", pg_url)
    assert moved["people"] == list(NAMES[:3])
    face_json(capsys, "export", tmp_path / "b.json", "--gallery", pg_url)
    face_json(capsys, "import", tmp_path / "b.json", "--gallery", back)
    face_json(capsys, "export", tmp_path / "c.json", "--gallery", back)
    docs = [json.loads((tmp_path / f"{x}.json").read_text()) for x in "abc"]
    assert docs[0] == docs[1] == docs[2]  # people, embeddings, crops (PNG), times, encoder: all kept exactly
    assert all(e["crop_png"] for p in docs[0]["people"] for e in p["embeddings"])
    with open_gallery(sqlite) as a, open_gallery(pg_url) as b:
        assert a.encoder == b.encoder
        assert np.array_equal(a.matrix().embeddings, b.matrix().embeddings)
    found = face_json(capsys, "identify", "--image", photos[NAMES[2]][0], "--threshold", "0.5", *models(pg_url))
    assert found["name"] == NAMES[2] and found["distance"] < EXACT


def test_the_password_from_pgpassword_or_a_pgpass_file(capsys, monkeypatch, photos, pg_url, tmp_path):
    bare = pg_url.replace(f":{PASSWORD}", "")
    face_json(capsys, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(pg_url))
    err = one_line(capsys, 2, "list", "--gallery", bare)
    assert "no password supplied" in err and "PGPASSWORD" in err
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert [p["name"] for p in face_json(capsys, "list", "--gallery", bare)["people"]] == ["Alice"]
    monkeypatch.delenv("PGPASSWORD")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:*:*:edgepipe:{PASSWORD}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert [p["name"] for p in face_json(capsys, "list", "--gallery", bare)["people"]] == ["Alice"]


def test_bad_urls_and_wrong_passwords_are_one_line_each(capsys, postgres, pg_url):
    port = postgres.port
    wrong = with_password(pg_url.replace(f":{PASSWORD}", ""), "not-the-" + PASSWORD)
    err = one_line(capsys, 2, "list", "--gallery", wrong)
    assert "password authentication failed" in err and "not-the-" not in err
    err = one_line(capsys, 2, "list", "--gallery", with_password(f"postgresql://edgepipe@127.0.0.1:{port}/nodb"))
    assert 'database "nodb" does not exist' in err
    err = one_line(capsys, 2, "list", "--gallery", f"postgresql://edgepipe:{PASSWORD}@127.0.0.1:99999/x")
    assert "port must be a number in 1..65535" in err
    err = one_line(capsys, 2, "list", "--gallery", f"postgresql://edgepipe:{PASSWORD}@127.0.0.1/x?bogus=1")
    assert "not a PostgreSQL URL" in err
    err = one_line(capsys, 2, "list", "--gallery", f"mysql://root:{PASSWORD}@127.0.0.1/faces")
    assert "takes an SQLite file path or a postgresql:// or postgres:// URL" in err and "mysql://root@" in err
    err = one_line(capsys, 2, "list", "--gallery", pg_url)
    assert "no face gallery at postgresql://edgepipe@" in err


def test_a_server_that_does_not_answer_is_exit_1(capsys, photos):
    url = f"postgresql://edgepipe:{PASSWORD}@127.0.0.1:{free_port()}/edgepipe"
    err = one_line(capsys, 1, "list", "--gallery", url)
    assert "is unreachable" in err and "is the PostgreSQL server running" in err
    err = one_line(capsys, 1, "enroll", "--name", "Alice", "--images", photos["Alice"][0], *models(url))
    assert "is unreachable" in err


def test_a_failed_import_leaves_no_gallery_on_the_server(capsys, pg_url, tmp_path):
    file = tmp_path / "gallery.json"
    file.write_text(json.dumps({"format": "edgepipe-face-gallery", "schema_version": 1, "people": [],
                                "encoder": {"sha256": "ab" * 32, "embedding_size": 128, "name": "x.onnx"},
                                "threshold": "not an object"}))
    err = one_line(capsys, 2, "import", file, "--gallery", pg_url)
    assert "threshold must be an object" in err
    err = one_line(capsys, 2, "list", "--gallery", pg_url)
    assert "no face gallery" in err


def test_verbose_output_never_shows_the_password(pg_url, postgres):
    env = {**os.environ, "PGPASSFILE": "/nonexistent"}
    env.pop("PGPASSWORD", None)
    wrong = pg_url.replace(PASSWORD, "wrong-" + PASSWORD)
    for url, expected in ((pg_url, "no face gallery"), (wrong, "password authentication failed")):
        done = subprocess.run([sys.executable, "-m", "edgepipe.apps", "-v", "face", "list", "--gallery", url],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode != 0 and expected in done.stderr  # -v: the traceback and debug logging
        no_password(done.stdout, done.stderr)
