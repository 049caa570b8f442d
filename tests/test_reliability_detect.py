"""`edgepipe detect` given hostile inputs, run as a subprocess: outputs over inputs, unwritable and failing outputs,
non-finite options, videos without frames, signals while a stream opens, native log lines."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.export.data.detection import make_video
from tests.detect_runs import ROOT, YOLO
from tests.reliability import case


def run(*args: str, cwd: Path = ROOT, fsize: int = 0, timeout: float = 120) -> subprocess.CompletedProcess:
    """`edgepipe detect --model YOLO --provider cpu --no-show ARGS` in a new process (a file size limit of fsize
    bytes when given: writing past it fails as on a full disk)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(YOLO), "--provider", "cpu",
                           "--no-show", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          preexec_fn=limit if fsize else None)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The command's own error line; nothing else on stderr but its log lines (no traceback, no native lines)."""
    errors = [line for line in result.stderr.splitlines() if not line.startswith(("INFO ", "WARNING "))]
    assert len(errors) == 1 and errors[0].startswith("edgepipe detect: "), result.stderr
    return errors[0]


@pytest.fixture
def victim(tmp_path, video) -> Path:
    """A copy of the test video that a command must not touch."""
    return Path(shutil.copy(video, tmp_path / "victim.mp4"))


@case("detect", "`--jsonl` or `--save` names the `--source` video", "refused before any frame is read, naming "
      "both paths; exit 2; the video is untouched")
@pytest.mark.parametrize("option", ["--jsonl", "--save"])
def test_an_output_over_the_source_video(victim, option):
    before = victim.read_bytes()
    r = run("--source", str(victim), option, str(victim))
    assert r.returncode == 2 and "would write over the --source" in one_error_line(r)
    assert victim.read_bytes() == before


@case("detect", "`--save` is the `--source` image folder, or the folder of a `--source` image", "refused before "
      "any frame is read; exit 2; the images are untouched")
@pytest.mark.parametrize("same", ["folder", "one image"])
def test_annotated_images_over_the_source_images(tmp_path, same):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((64, 64, 3), 90 * i, np.uint8))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    source, save = (str(folder), str(folder)) if same == "folder" else ("0.png", ".")
    r = run("--source", source, "--save", save, cwd=folder)
    assert r.returncode == 2 and "would write over the --source" in one_error_line(r)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


@case("detect", "`--summary` under a path whose folder is a file (`gen.py/s.json`)", "refused before the run "
      "(was: a traceback after the whole run); exit 2")
def test_summary_under_a_file(tmp_path, video):
    (tmp_path / "gen.py").write_text("x = 1\n")
    r = run("--source", str(video), "--summary", str(tmp_path / "gen.py" / "s.json"), "--max-frames", "2")
    assert r.returncode == 2 and "is a file, not a folder" in one_error_line(r)


@case("detect", "`--jsonl /proc/version` (a kernel file)", "refused before the run; exit 2")
def test_jsonl_into_a_kernel_file(video):
    r = run("--source", str(video), "--jsonl", "/proc/version")
    assert r.returncode == 2 and "kernel file" in one_error_line(r)


@case("detect", "the JSON Lines file cannot grow (disk full, here a file size limit)", "one line naming the file and "
      "the reason; exit 1; every line written is complete; the summary of the frames done is written")
def test_jsonl_write_fails_mid_run(tmp_path, video):
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.json"
    r = run("--source", str(video), "--jsonl", str(out), "--summary", str(summary), fsize=6000)
    line = one_error_line(r)
    assert r.returncode == 1 and f"cannot write --jsonl {out}" in line and "File too large" in line
    records = [json.loads(text) for text in out.read_text().splitlines()]  # every line parses
    assert 0 < len(records) < 120 and out.read_text().endswith("\n")
    report = json.loads(summary.read_text())
    assert report["frames"] >= len(records) and report["stopped"] == "output failed"


@case("detect", "the annotated video cannot grow (disk full, here a file size limit)", "the video is closed while "
      "there is room, playable up to its last frame; one line naming it; exit 1; the JSON lines stay complete")
def test_video_write_fails_mid_run(tmp_path, video):
    out, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    r = run("--source", str(video), "--save", str(out), "--jsonl", str(lines), fsize=600_000)
    line = one_error_line(r)
    assert r.returncode == 1 and f"cannot write --save {out}" in line and "plays up to there" in line
    cap = cv2.VideoCapture(str(out))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert 0 < frames < 120 and frames == int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    assert all(json.loads(text) for text in lines.read_text().splitlines())


@case("detect", "`--line nan,0,1,1`, `--line door=inf,0,inf,480`, `--conf nan`", "one line: coordinates and "
      "thresholds must be finite; exit 2")
@pytest.mark.parametrize("option", [["--line", "nan,0,1,1"], ["--line", "door=inf,0,inf,480"], ["--conf", "nan"],
                                    ["--zone", "0,0,1e999,5"]])
def test_non_finite_numbers(video, option):
    r = run("--source", str(video), *option)
    assert r.returncode == 2 and "finite" in one_error_line(r)


@case("detect", "an AVI cut where its frames begin (it opens, but holds no frame), with and without `--loop`",
      "one line: it gave no frame; exit 2 (was: 0 frames, exit 0)")
@pytest.mark.parametrize("loop", [[], ["--loop"]])
def test_a_video_without_frames(tmp_path, loop):
    whole, empty = tmp_path / "whole.avi", tmp_path / "empty.avi"
    make_video(whole, n_frames=5, size=(240, 320), seed=1)
    data = whole.read_bytes()
    empty.write_bytes(data[: data.find(b"movi") + 4])  # the headers, cut where the frames begin
    assert cv2.VideoCapture(str(empty)).isOpened()  # it opens: the case this test is about
    r = run("--source", str(empty), *loop, timeout=30)
    assert r.returncode == 2 and "gave no frame" in one_error_line(r)


@case("detect", "an AVI cut in the middle", "the frames that decode are processed; the ones missing are counted "
      "in a warning and the summary; exit 0")
def test_a_cut_video(tmp_path):
    whole = tmp_path / "whole.avi"
    make_video(whole, n_frames=30, size=(240, 320), seed=1)
    cut = tmp_path / "cut.avi"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    r = run("--source", str(cut), "--json")
    summary = json.loads(r.stdout)
    assert r.returncode == 0 and 0 < summary["frames"] < 30 and summary["undecoded"] == 30 - summary["frames"]
    assert "could not be decoded" in r.stderr


@case("detect", "Ctrl-C or SIGTERM while a stream is being opened (a server that accepts and never answers)",
      "stops within a second (measured 0.27 s; was about 31 s); exit 130")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_a_stream_opens(sig):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted = []
        threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
        proc = subprocess.Popen([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(YOLO), "--provider",
                                 "cpu", "--no-show", "--source", f"http://127.0.0.1:{server.getsockname()[1]}/x"],
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        deadline = time.time() + 60
        while not accepted and time.time() < deadline:
            time.sleep(0.05)
        assert accepted, "the command never connected"
        t0 = time.perf_counter()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        elapsed = time.perf_counter() - t0
    assert proc.returncode == 130 and err.strip().endswith("edgepipe detect: interrupted") and elapsed < 2.0, err


@case("detect", "`--model` names a folder (`x.onnx/`)", "one line: it is a folder, not a model; exit 2 (was: "
      "\"not found\")")
def test_a_folder_named_like_a_model(tmp_path, video):
    (tmp_path / "x.onnx").mkdir()
    r = subprocess.run([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(tmp_path / "x.onnx"),
                        "--source", str(video), "--no-show"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "is a folder, not an .onnx file" in one_error_line(r)


@case("detect", "`--provider cuda` on a machine without CUDA; `--source 0` without a camera", "one line of "
      "edgepipe's own; onnxruntime's and OpenCV's own log lines only with `--verbose`; exit 2")
@pytest.mark.parametrize("option", [["--provider", "cuda", "--source", "VIDEO"], ["--source", "0"]])
def test_no_native_log_lines(video, option):
    if option[0] == "--provider" and os.environ.get("CUDA_VISIBLE_DEVICES", "") != "" and shutil.which("nvidia-smi"):
        pytest.skip("this machine has CUDA")
    argv = [str(video) if a == "VIDEO" else a for a in option]
    r = subprocess.run([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(YOLO), "--no-show", *argv],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and one_error_line(r)
    assert "onnxruntime:" not in r.stderr and "[ERROR:" not in r.stderr and "[W:" not in r.stderr
