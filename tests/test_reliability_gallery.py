"""`edgepipe face` on galleries in trouble, run as subprocesses: read-only files and folders (read commands still
work), a lock held too long, a full disk, a damaged file, a file that is not a gallery."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from tests.detect_runs import ROOT
from tests.disks import small_disk
from tests.reliability import case

ENCODER = EncoderId("0" * 64, 4, "enc.onnx")


def gallery(folder: Path, people: int = 3, name: str = "person") -> Path:
    """A gallery of random 4-d embeddings at folder/faces.db: NAME 0, NAME 1, ..."""
    path = folder / "faces.db"
    with FaceDB.open(path, ENCODER) as db:
        for k in range(people):
            db.enroll(f"{name} {k}", np.random.default_rng(k).normal(size=(2, 4)).astype(np.float32))
    return path


def face(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`edgepipe face ARGS` in a new process."""
    return subprocess.run([sys.executable, "-m", "edgepipe.apps", "face", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def error_line(r: subprocess.CompletedProcess) -> str:
    lines = [line for line in r.stderr.splitlines() if not line.startswith(("INFO ", "WARNING "))]
    assert len(lines) == 1 and lines[0].startswith("edgepipe face: error: "), r.stderr
    return lines[0]


@pytest.fixture
def read_only_gallery(tmp_path):
    """A gallery on a read-only file system (a tmpfs mounted read-only: root writes through permissions), or, for a
    user that may not mount, in a folder and a file without write permission."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        path = gallery(folder)
        os.chmod(path, 0o444)
        os.chmod(folder, 0o555)
        yield path
        os.chmod(folder, 0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("root here may not mount a file system: no read-only folder to test on")
    try:
        path = gallery(folder)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True)


@case("face", "a gallery whose file and folder are read-only", "`list` and `export` read it as it is (opened "
      "read-only); `remove` says it is read-only, exit 2, nothing changed (was: \"damaged or held by another "
      "process\" for every command)")
def test_a_read_only_gallery(read_only_gallery, tmp_path):
    path = read_only_gallery
    listed = face("list", "--gallery", str(path), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)["people"]] == ["person 0", "person 1", "person 2"]
    out = tmp_path / "g.json"
    exported = face("export", "--gallery", str(path), str(out))
    assert exported.returncode == 0 and len(json.loads(out.read_text())["people"]) == 3, exported.stderr
    removed = face("remove", "--gallery", str(path), "person 1")
    assert removed.returncode == 2 and "is read-only" in error_line(removed)
    with FaceDB.open(path, create=False, readonly=True) as db:
        assert len(db.people()) == 3


@case("face", "another process holds the gallery's write lock for longer than 10 s", "one line: it stayed locked, "
      "retry; exit 1; nothing changed")
def test_a_locked_gallery(tmp_path):
    path = gallery(tmp_path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held
    try:
        r = face("remove", "--gallery", str(path), "person 1")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.returncode == 1 and "stayed locked by another process" in error_line(r)
    assert len(FaceDB.open(path, create=False).people()) == 3


@case("face", "the disk fills while importing into a gallery (a small tmpfs)", "one line: the disk is full; exit "
      "1; the gallery as it was (one transaction)")
def test_a_full_disk_during_import(tmp_path):
    with small_disk(tmp_path / "disk", "256k") as disk:
        path = gallery(disk, people=1)
        (tmp_path / "big").mkdir()
        export = tmp_path / "big.json"
        with FaceDB.open(gallery(tmp_path / "big", people=2000, name="visitor"), create=False) as db:
            db.export_json(export)
        r = face("import", "--gallery", str(path), str(export))
        assert r.returncode == 1 and "is full" in error_line(r), r.stderr
        with FaceDB.open(path, create=False) as db:
            assert [p.name for p in db.people()] == ["person 0"]


@case("face", "a gallery file damaged in the middle", "one line: damaged, restore it from a copy or an export; "
      "exit 2")
def test_a_damaged_gallery(tmp_path):
    path = gallery(tmp_path, people=300)
    data = bytearray(path.read_bytes())
    data[4096:12288] = b"\xa5" * 8192  # pages past the header: SQLite reads a malformed b-tree
    path.write_bytes(bytes(data))
    r = face("list", "--gallery", str(path))
    assert r.returncode == 2 and "is damaged" in error_line(r)


@case("face", "`--gallery` names a file that is not a gallery (a PNG)", "one line: not an SQLite database, check "
      "the path; exit 2; the file untouched")
def test_a_file_that_is_not_a_gallery(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    before = path.read_bytes()
    r = face("list", "--gallery", str(path))
    assert r.returncode == 2 and "not an SQLite database" in error_line(r) and path.read_bytes() == before
