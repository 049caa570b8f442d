"""export, quantize and train on a disk that fills in the middle of their run (a small tmpfs), as subprocesses: one line
naming the file and the reason, exit code 1, and the files written before stay whole."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import threading
import time

import onnx

from edgepipe import runtime
from edgepipe.export.models import build
from edgepipe.export.train.loop import load_checkpoint
from edgepipe.export.train.pipeline import TRAINING_FILES
from tests.detect_runs import ROOT, YOLO, scene_folder
from tests.disks import small_disk
from tests.reliability import case
from tests.test_reliability_cli import edgepipe, only_line
from tests.test_reliability_signals import EPOCH_3


@case("export", "the disk fills after the model is written, while a variant is written (`--fp16` on a small "
      "tmpfs)", "one line naming the variant and the reason; exit 1 (was: an OSError traceback); the model written "
      "before is whole and loads; no half-written variant or temporary file")
def test_export_on_a_disk_that_fills(tmp_path):
    weights = 4 * sum(p.numel() for p in build("lenet5").parameters())  # the fp32 file's bulk; fp16 adds half
    pages = -(-int(1.3 * weights) // 4096)
    with small_disk(tmp_path / "disk", f"{pages * 4}k") as disk:
        r = edgepipe("export", "lenet5", "--out", str(disk / "l.onnx"), "--fp16", "--quiet")
        line = only_line(r, "export")
        assert r.returncode == 1 and f"cannot write {disk / 'l.fp16.onnx'}: No space left on device" in line
        onnx.checker.check_model(onnx.load(str(disk / "l.onnx")), full_check=True)
        assert runtime.load(disk / "l.onnx", providers="cpu").meta.model_name == "lenet5"
        assert sorted(p.name for p in disk.iterdir()) == ["l.onnx"]


@case("quantize", "the disk fills after the int8 variant is written, while the fp16 one is (a small tmpfs)", "one "
      "line naming the variant and the reason; exit 1; the int8 file written before is whole and runs; no "
      "half-written variant or temporary file")
def test_quantize_on_a_disk_that_fills(tmp_path):
    (tmp_path / "calib").mkdir()
    calib = scene_folder(tmp_path / "calib", 40, seed=11)
    pages = -(-int(0.4 * YOLO.stat().st_size) // 4096)  # int8 takes about 0.3 of the fp32 file, fp16 0.5
    with small_disk(tmp_path / "disk", f"{pages * 4}k") as disk:
        r = edgepipe("quantize", str(YOLO), "--calib", str(calib), "--out", str(disk / "y.onnx"), "--fp16",
                     "--min-agreement", "0", "--bench-runs", "1", "--quiet")
        line = only_line(r, "quantize")
        assert r.returncode == 1 and f"cannot write {disk / 'y.fp16.onnx'}: No space left on device" in line
        model = runtime.load(disk / "y.int8.onnx", providers="cpu")
        assert model.meta.evaluation["variant"] == "int8"
        assert sorted(p.name for p in disk.iterdir()) == ["y.int8.onnx"]


def fill(disk, stop: threading.Event) -> None:
    """Take every free byte of disk, and whatever is freed later, until stop is set."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        while not stop.is_set():
            try:
                filler.write(b"\0" * 65536)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                time.sleep(0.002)


@case("train", "the disk fills between epochs (a small tmpfs filled once epoch 3 is reported)", "one line naming "
      "the checkpoint and the reason; exit 1 (was: a traceback from torch.save); `last.pt` and "
      "`best.pt` of an earlier epoch stay whole and load; no temporary file left")
def test_train_on_a_disk_that_fills(tmp_path):
    with small_disk(tmp_path / "disk", "4m") as disk:
        out = disk / "run"
        proc = subprocess.Popen([sys.executable, "-m", "edgepipe.apps", "train", "lenet5", "--tiny", "--epochs",
                                 "1000", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT)
        lines, stop = [], threading.Event()
        try:
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))
                if re.search(EPOCH_3, line):
                    break
            filler = threading.Thread(target=fill, args=(disk, stop))
            filler.start()
            lines += proc.stderr.read().splitlines()
            proc.wait(timeout=120)
        finally:
            stop.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            filler.join(10)
        errors = [line for line in lines if line.startswith("edgepipe train: ")]
        assert proc.returncode == 1 and len(errors) == 1 and "Traceback" not in "\n".join(lines), lines[-8:]
        assert f"cannot write {out}/" in errors[0] and "No space left on device" in errors[0]
        assert {p.name for p in out.iterdir()} <= set(TRAINING_FILES)
        assert load_checkpoint(out / "last.pt")["epoch"] >= 2 and load_checkpoint(out / "best.pt")["epoch"] >= 1
