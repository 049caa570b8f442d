"""`edgepipe face samples DIR` as a user runs it: every photo enrolls, the printed commands work, nothing is written
over, and a missing model is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability import only_line

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--people", "2", "--photos", "2", "--unknown", "1", "--calibration-people", "3", "--no-video", "--quiet")


def edgepipe(*args: str | Path, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepipe.apps", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("samples")
    folder = base / "try"
    result = edgepipe("face", "samples", folder, *SMALL, cwd=base)  # outside the repository: absolute model paths
    assert result.returncode == 0, result.stderr
    return folder, result


def test_every_photo_enrolls_and_the_printed_commands_run(samples, tmp_path):
    folder, result = samples
    manifest = json.loads((folder / "samples.json").read_text())
    assert manifest["names"] == ["Ada", "Grace"] and manifest["video"] == ""
    photos = sorted(folder.rglob("*.jpg"))
    assert len(photos) == 2 * 2 + 2 + 1 + 3 * 4  # enroll, door (each person, the unknown), calibrate
    commands = result.stdout.split("try next:\n")[1].strip().splitlines()
    assert [c.split()[:3] for c in commands] == [["for", "name", "in"], ["edgepipe", "face", "calibrate"],
                                                 ["edgepipe", "face", "verify"], ["edgepipe", "face", "identify"]]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    ran = [subprocess.run(["bash", "-c", c], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
           for c in commands]
    assert [r.returncode for r in ran] == [0] * 4, [r.stderr[-800:] for r in ran]
    assert ran[0].stdout.splitlines() == ["enrolled Ada: 2 face(s) added, 2 in the gallery",
                                          "enrolled Grace: 2 face(s) added, 2 in the gallery"]  # none refused
    assert "refused" not in ran[0].stderr
    assert "12 image(s)" not in ran[1].stdout and "(0 image(s) skipped)" in ran[1].stdout  # every photo has its face
    listed = edgepipe("face", "list", "--json", cwd=tmp_path)
    assert sorted(p["name"] for p in json.loads(listed.stdout)["people"]) == ["Ada", "Grace"]


def test_every_door_and_calibration_photo_enrolls_too(samples, tmp_path):
    folder, result = samples
    others = sorted((folder / "door").glob("*.jpg")) + sorted((folder / "calibrate").rglob("*.jpg"))
    models = result.stdout.split("face calibrate --dataset ")[1].splitlines()[0].split(" ", 1)[1].split()
    enrolled = edgepipe("face", "enroll", "--name", "Everyone", "--images", *others, "--gallery", tmp_path / "all.db",
                        *models)
    assert enrolled.returncode == 0 and "refused" not in enrolled.stderr, enrolled.stderr
    assert f"{len(others)} face(s) added" in enrolled.stdout


def test_refuses_to_write_over_existing_files(samples):
    folder, _ = samples
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    again = edgepipe("face", "samples", folder, *SMALL)
    assert again.returncode == 2
    assert "exists" in only_line(again, "face") and "give a new folder" in again.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def test_a_file_in_the_way_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("mine")
    result = edgepipe("face", "samples", tmp_path / "taken", *SMALL)
    assert result.returncode == 2 and "is a file" in only_line(result, "face")
    assert (tmp_path / "taken").read_text() == "mine"


def test_a_missing_model_is_one_line(tmp_path):
    result = edgepipe("face", "samples", tmp_path / "s", "--detector", tmp_path / "none.onnx", *SMALL)
    assert result.returncode == 2
    line = only_line(result, "face")
    assert "--detector" in line and "none.onnx not found" in line and "edgepipe train yolo-face" in line
    assert not (tmp_path / "s").exists()
