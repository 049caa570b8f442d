"""The commands that write files, given outputs over their inputs or outputs that cannot be written, run as
subprocesses: export, train, eval, quantize, face calibrate and face export refuse before any work, naming both paths,
and leave the input as it was."""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe
from tests.detect_runs import YOLO
from tests.reliability import case
from tests.test_reliability_cli import FACE, edgepipe, only_line


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    """A tiny trained LeNet-5 checkpoint (seconds)."""
    out = tmp_path_factory.mktemp("lenet")
    fit(make_recipe("lenet5", tiny=True), out, progress=False)
    return out / "best.pt"


def bytes_of(*paths) -> dict:
    return {str(p): p.read_bytes() for p in paths}


@case("export", "`--out` is the source checkpoint (a checkpoint named `m.onnx`, or a hard link to it), a variant "
      "would replace it (`--fp16` from `m.fp16.onnx`), or `--out m.pt`", "refused before any work, naming both paths "
      "(`--out m.pt`: not an .onnx path); exit 2; the checkpoint untouched")
@pytest.mark.parametrize("how", ["same name", "hard link", "variant", "not onnx"])
def test_export_over_its_checkpoint(tmp_path, lenet, how):
    source = tmp_path / {"same name": "m.onnx", "variant": "m.fp16.onnx"}.get(how, "m.pt")
    shutil.copy(lenet, source)
    out = {"same name": source, "hard link": tmp_path / "link.onnx", "variant": tmp_path / "m.onnx",
           "not onnx": source}[how]
    if how == "hard link":
        os.link(source, out)
    before, files = bytes_of(source), sorted(tmp_path.iterdir())
    r = edgepipe("export", str(source), "--out", str(out), "--fp16", "--quiet")
    line = only_line(r, "export")
    assert r.returncode == 2 and bytes_of(source) == before
    if how == "not onnx":
        assert "must be an .onnx path" in line
    else:
        writer = f"the fp16 variant {source}" if how == "variant" else f"--out {out}"
        assert f"{writer} would write over the source {source}" in line
    assert sorted(tmp_path.iterdir()) == files


@case("export", "`--out` names a folder, or a path under a file (`gen.py/m.onnx`)", "refused before any work; "
      "exit 2")
@pytest.mark.parametrize("how", ["folder", "under a file"])
def test_export_to_an_unwritable_path(tmp_path, how):
    (tmp_path / "m.onnx").mkdir()
    (tmp_path / "gen.py").write_text("x = 1\n")
    out = tmp_path / ("m.onnx" if how == "folder" else "gen.py/m.onnx")
    r = edgepipe("export", "lenet5", "--out", str(out), "--quiet")
    expected = "is a folder: give a file path" if how == "folder" else "is a file, not a folder"
    assert r.returncode == 2 and expected in only_line(r, "export")


@case("train", "`--out D --resume D/last.pt` (its files would replace the checkpoint it starts from), the same "
      "with `--finetune`, `--out` a file, `--out` the `--data` folder", "refused before any work, naming both paths "
      "(was: `--out` the `--data` folder accepted); exit 2; the checkpoint untouched")
@pytest.mark.parametrize("how", ["resume", "finetune", "out is a file", "out is the data"])
def test_train_over_its_inputs(tmp_path, lenet, how):
    run = tmp_path / "run"
    run.mkdir()
    start = shutil.copy(lenet, run / ("last.pt" if how == "resume" else "best.pt"))
    before = bytes_of(start)
    argv = {"resume": ["--out", str(run), "--resume", str(start)],
            "finetune": ["--out", str(run), "--finetune", str(start)],
            "out is a file": ["--out", str(start)],
            "out is the data": ["--out", str(tmp_path / "data"), "--data", str(tmp_path / "data")]}[how]
    r = edgepipe("train", "lenet5", "--tiny", "--quiet", *argv)
    line = only_line(r, "train")
    expected = {"resume": f"would write over the --resume {start}", "finetune": "would write over the --finetune",
                "out is a file": "is a file: give a folder", "out is the data": "would write over the --data"}[how]
    assert r.returncode == 2 and expected in line and bytes_of(start) == before
    assert sorted(p.name for p in run.iterdir()) == [start.name]


@case("eval", "`--out` names the model (`eval m.onnx --out m.onnx`), or a path under a file", "refused before the "
      "evaluation (was: a FileExistsError traceback, or Errno 20, after the whole evaluation); exit 2; the model "
      "untouched")
@pytest.mark.parametrize("how", ["the model", "under a file"])
def test_eval_over_its_model(tmp_path, how):
    model = shutil.copy(YOLO, tmp_path / "m.onnx")
    before = bytes_of(model)
    out = model if how == "the model" else tmp_path / "m.onnx" / "metrics"
    r = edgepipe("eval", str(model), "--out", str(out), "--quiet")
    expected = "is a file: give a folder" if how == "the model" else "is a file, not a folder"
    assert r.returncode == 2 and expected in only_line(r, "eval") and bytes_of(model) == before


@case("quantize", "a variant would replace the model (`quantize m.int8.onnx --out m.onnx`, or `m.int8.onnx` a "
      "hard link to it)", "refused before any work, naming both paths (was: the hard link passed the check, "
      "resolved paths only); exit 2; the model untouched")
@pytest.mark.parametrize("how", ["same name", "hard link"])
def test_quantize_over_its_model(tmp_path, how):
    model = tmp_path / ("m.int8.onnx" if how == "same name" else "yolo.onnx")
    shutil.copy(YOLO, model)
    out = tmp_path / "m.onnx"
    if how == "hard link":
        os.link(model, tmp_path / "m.int8.onnx")
    before = bytes_of(model)
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(2):
        cv2.imwrite(str(calib / f"{i}.png"), np.full((32, 32, 3), 50 * i, np.uint8))
    r = edgepipe("quantize", str(model), "--calib", str(calib), "--out", str(out), "--quiet")
    line = only_line(r, "quantize")
    assert r.returncode == 2 and f"{tmp_path / 'm.int8.onnx'} would write over the model {model}" in line
    assert bytes_of(model) == before


@pytest.fixture
def people(tmp_path, photos):
    """A --dataset folder: one sub-folder of photos per person."""
    folder = tmp_path / "people"
    for name, paths in photos.items():
        (folder / name).mkdir(parents=True)
        for path in paths:
            shutil.copy(path, folder / name / path.name)
    return folder


@case("face", "`calibrate --roc` names one of the `--dataset` images, or is not a .png", "refused before any image "
      "is embedded (was: the image replaced by the ROC plot, exit 0; a .jpg refused only after the work); exit 2")
@pytest.mark.parametrize("how", ["an image", "not png"])
def test_calibrate_roc_over_an_image(tmp_path, people, how):
    image = next(people.rglob("*.png"))
    before = bytes_of(image)
    roc = image if how == "an image" else tmp_path / "roc.jpg"
    r = edgepipe("face", "calibrate", "--dataset", str(people), "--roc", str(roc), "--gallery",
                 str(tmp_path / "g.db"), "--detector", str(FACE / "yolo-face.onnx"), "--encoder",
                 str(FACE / "facenet.onnx"), "--detector-provider", "cpu", "--encoder-provider", "cpu", "--quiet")
    line = only_line(r, "face")
    expected = f"would write over the --dataset image {image}" if how == "an image" else "must be a .png file"
    assert r.returncode == 2 and expected in line and bytes_of(image) == before
    assert not (tmp_path / "g.db").exists()


@case("face", "`export FILE` where FILE is the `--gallery` itself", "refused, naming both paths (was: the gallery "
      "replaced by its JSON export, exit 0); exit 2; the gallery untouched")
def test_export_over_the_gallery(tmp_path):
    path = tmp_path / "faces.db"
    with FaceDB.open(path, EncoderId("0" * 64, 4, "enc.onnx")) as db:
        db.enroll("Ada", np.ones((1, 4), np.float32))
    before = bytes_of(path)
    r = edgepipe("face", "export", "--gallery", str(path), str(path))
    assert r.returncode == 2 and f"would write over the --gallery {path}" in only_line(r, "face")
    assert bytes_of(path) == before
