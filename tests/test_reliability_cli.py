"""The other commands given hostile inputs, run as subprocesses: a closed pipe, models that are folders, outputs over
inputs at the kiosk, non-finite numbers, unknown options."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from tests.detect_runs import ROOT, YOLO
from tests.reliability import case, only_line

FACE = ROOT / "tests" / "assets"


def edgepipe(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepipe.apps", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


@case("face", "`edgepipe face list | head -1` (the reader closes the pipe)", "ends quietly, no traceback; exit 141 "
      "(was: a BrokenPipeError traceback)")
def test_output_to_a_closed_pipe(tmp_path):
    gallery = tmp_path / "faces.db"
    encoder = EncoderId("0" * 64, 4, "enc.onnx")
    with FaceDB.open(gallery, encoder) as db:
        for k in range(2000):  # a listing longer than the pipe's buffer
            db.enroll(f"person {k}", np.full((1, 4), k + 1.0, np.float32))
    proc = subprocess.Popen([sys.executable, "-m", "edgepipe.apps", "face", "list", "--gallery", str(gallery)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout.readline().startswith(b"gallery ")
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err


@case("info, bench, select", "the model path is a folder (`x.onnx/`)", "one line: it is a folder, not an .onnx file; "
      "exit 2")
@pytest.mark.parametrize("command", [["info"], ["bench", "--runs", "1"], ["select", "--latency-ms", "5"]])
def test_a_folder_named_like_a_model(tmp_path, command):
    folder = tmp_path / "x.onnx"
    folder.mkdir()
    name = command[0]
    r = edgepipe(name, str(folder), *command[1:])
    assert r.returncode == 2 and "is a folder, not an .onnx file" in only_line(r, name)


@case("kiosk", "`--save` names the gallery, the encoder or the source video", "refused before the camera opens; "
      "exit 2; the file untouched")
@pytest.mark.parametrize("victim", ["--gallery", "--encoder", "--source"])
def test_kiosk_output_over_an_input(tmp_path, video, victim):
    files = {"--gallery": tmp_path / "faces.avi", "--encoder": tmp_path / "facenet.avi",
             "--source": tmp_path / "visitors.avi"}
    shutil.copy(FACE / "facenet.onnx", files["--encoder"])
    shutil.copy(video, files["--source"])
    with FaceDB.open(files["--gallery"], EncoderId.of_file(files["--encoder"], 128)):
        pass
    before = files[victim].read_bytes()
    r = edgepipe("kiosk", "--detector", str(FACE / "yolo-face.onnx"), "--encoder", str(files["--encoder"]),
                 "--gallery", str(files["--gallery"]), "--source", str(files["--source"]), "--save",
                 str(files[victim]), "--threshold", "1", "--no-show", "--detector-provider", "cpu",
                 "--encoder-provider", "cpu")
    assert r.returncode == 2 and f"would write over the {victim}" in only_line(r, "kiosk")
    assert files[victim].read_bytes() == before


@case("select, kiosk, face", "`--latency-ms nan`, `--cooldown inf`, `--threshold nan`", "one line: the number must "
      "be finite; exit 2")
@pytest.mark.parametrize("argv", [["select", str(YOLO), "--latency-ms", "nan"],
                                  ["kiosk", "--detector", "d", "--encoder", "e", "--cooldown", "inf"],
                                  ["face", "identify", "--image", "i", "--detector", "d", "--encoder", "e",
                                   "--threshold", "nan"]])
def test_non_finite_numbers(argv):
    r = edgepipe(*argv)
    assert r.returncode == 2 and "must be a finite number" in r.stderr and len(r.stderr.splitlines()) == 1


@case("every command", "an unknown option, a missing argument", "one line naming it and pointing to --help (no "
      "usage block); exit 2")
@pytest.mark.parametrize("argv", [["detect", "--modle", "m.onnx"], ["info"], ["face", "enroll", "--name"]])
def test_bad_usage_is_one_line(argv):
    r = edgepipe(*argv)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "--help" in r.stderr, r.stderr
