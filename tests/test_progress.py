"""Progress: a tqdm bar on a terminal, plain lines elsewhere, nothing when quiet; and the commands that show it
(train, eval, export's calibration and accuracy checks, face calibrate) with and without --quiet."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import time

import pytest

from edgepipe.apps.cli import interrupts, main
from edgepipe.runtime.progress import Progress, track
from tests.face_commands import NAMES, face, models


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar():
    stream = Terminal()
    with Progress(4, "work", stream=stream) as bar:
        for _ in range(4):
            bar.update(loss=0.5)
    text = stream.getvalue()
    assert "\r" in text and "work: 100%" in text and "4/4" in text and "loss=0.5000" in text


def test_a_log_gets_plain_lines_at_most_every_interval():
    stream = io.StringIO()
    with Progress(3, "work", stream=stream, interval=0.0) as bar:
        for _ in range(3):
            bar.update()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [re.sub(r", \d+ s elapsed(, about \d+ s left)?$", "", line) for line in lines] == [
        "work: 0/3 (0%)", "work: 1/3 (33%)", "work: 2/3 (67%)", "work: 3/3 (100%)", "work: 3/3 (100%)"]
    slow = io.StringIO()
    with Progress(1000, "many", stream=slow, interval=3600.0) as bar:
        for _ in range(1000):
            bar.update()
    assert len(slow.getvalue().splitlines()) == 2  # the first and the last line only


def test_a_plain_line_tells_the_time_left_at_the_rate_so_far(monkeypatch):
    now = [100.0]  # the clock, seconds
    monkeypatch.setattr("edgepipe.runtime.progress.time.monotonic", lambda: now[0])
    stream = io.StringIO()
    with Progress(4, "work", stream=stream, interval=0.0) as bar:
        now[0] = 130.0
        bar.update()  # one of four done in 30 s: three more at that rate
        now[0] = 160.0
    assert stream.getvalue().splitlines() == ["work: 0/4 (0%), 0 s elapsed", "work: 1/4 (25%), 30 s elapsed, about "
                                              "90 s left", "work: 1/4 (25%), 60 s elapsed, about 180 s left"]


def test_quiet_writes_nothing_and_an_unknown_total_shows_the_count():
    quiet = Terminal()
    with Progress(5, "work", enabled=False, stream=quiet) as bar:
        bar.update(5)
    assert quiet.getvalue() == "" and bar.done == 5
    unknown = io.StringIO()
    with Progress(0, "steps", stream=unknown) as bar:
        bar.update(7)
    assert unknown.getvalue().splitlines()[-1].startswith("steps: 7/0, ")


def test_track_counts_what_it_yields(capsys):
    assert list(track(iter("abc"), 3, "letters")) == ["a", "b", "c"]
    assert "letters: 3/3 (100%)" in capsys.readouterr().err


def test_train_eval_and_export_show_progress_unless_quiet(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "lenet5", "--tiny", "--epochs", "1", "--out", str(run)]) == 0
    assert re.search(r"lenet5 epoch 1/1: \d+/\d+ \(100%\), loss \d\.\d{4}", capsys.readouterr().err)
    assert main(["train", "lenet5", "--tiny", "--epochs", "1", "--out", str(run), "--quiet"]) == 0
    assert "epoch 1/1:" not in capsys.readouterr().err
    checkpoint = str(run / "best.pt")
    assert main(["eval", checkpoint]) == 0
    assert "evaluating: 270/270 (100%)" in capsys.readouterr().err
    assert main(["eval", checkpoint, "--quiet"]) == 0
    assert "evaluating" not in capsys.readouterr().err
    args = ["export", checkpoint, "--out", str(tmp_path / "l.onnx"), "--int8", "--calib", "4", "--bench-runs", "2"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "int8 calibration: 4/4 (100%)" in err and err.count("evaluating: 270/270 (100%)") >= 2
    assert "timing: 2/2 (100%)" in err
    assert main([*args, "--quiet"]) == 0
    assert not re.search(r"(calibration|evaluating|timing): ", capsys.readouterr().err)


@pytest.mark.slow
def test_face_calibrate_shows_progress_unless_quiet(tmp_path, capsys, photos):
    dataset = tmp_path / "people"
    for name in NAMES:
        (dataset / name).mkdir(parents=True)
        for i, src in enumerate([*photos[name], photos[name][0]]):
            shutil.copy(src, dataset / name / f"{i}.png")
    images = sum(len(photos[n]) + 1 for n in NAMES)
    code, _, err = face(capsys, "calibrate", "--dataset", dataset, "--far", "0.1", *models(tmp_path / "g.db"))
    assert code == 0 and f"embedding faces: {images}/{images} (100%)" in err
    code, _, err = face(capsys, "calibrate", "--dataset", dataset, "--far", "0.1", "--quiet",
                        *models(tmp_path / "g2.db"))
    assert code == 0 and "embedding faces" not in err


def test_an_interrupt_swallowed_inside_the_work_is_raised_at_its_next_step():
    """A native call that swallows the KeyboardInterrupt (as one did while timing onnxruntime sessions) does not keep
    the command going: the next step counted raises it again; after the command, counting works again."""
    with interrupts():
        bar = Progress(3, "steps", enabled=False)
        bar.update()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here
        except KeyboardInterrupt:
            pass  # swallowed, as inside a library
        with pytest.raises(KeyboardInterrupt):
            bar.update()
    bar.update()
    assert bar.done == 2
