"""The detection app's faults: an unreadable video, a model that is not a detector, unwritable outputs, no
display, SIGTERM with the outputs kept playable, an HTTP stream that drops, and bad options as one-line errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import cv2
import pytest

from edgepipe.apps.detect.truth import read_jsonl
from edgepipe.export.data.detection import make_video
from edgepipe.runtime.metadata import from_flat, to_metadata_props
from tests.detect_runs import ROOT, YOLO, detect
from tests.onnx_graphs import conv_model, save


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(YOLO), "--provider", "cpu",
                           *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_unreadable_video_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    r = run_cli("--source", str(bad), "--no-show")
    assert r.returncode == 2 and "cannot read video" in r.stderr and "Traceback" not in r.stderr


def test_model_that_is_not_a_detector(tmp_path, video):
    props = to_metadata_props(from_flat({"task": "classify", "imgsz": [32, 32], "names": ["a", "b"]}, "edgepipe"))
    path = save(conv_model(props=props)[0], tmp_path / "classifier.onnx")
    r = subprocess.run([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(path), "--source", str(video),
                        "--provider", "cpu", "--no-show"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "not a detector" in r.stderr, r.stderr


def test_unwritable_output_fails_before_capture_starts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    # camera 99 does not exist: the error must be about the output, found before the capture is opened
    r = run_cli("--source", "99", "--jsonl", str(blocker / "out.jsonl"), "--no-show")
    assert r.returncode == 2 and "--jsonl" in r.stderr and "camera" not in r.stderr, r.stderr
    r = run_cli("--source", "99", "--save", str(tmp_path / "out.txt"), "--no-show")
    assert r.returncode == 2 and "--save must end in" in r.stderr


def test_missing_display_runs_without_a_window(tmp_path, video):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = run_cli("--source", str(video), "--show", "--max-frames", "10", "--jsonl", str(tmp_path / "w.jsonl"), env=env)
    assert r.returncode == 0 and "no display" in r.stderr
    assert len(read_jsonl(tmp_path / "w.jsonl")) == 10


def test_sigterm_stops_cleanly_with_outputs_playable(tmp_path):
    long_video = tmp_path / "long.avi"
    make_video(long_video, n_frames=3000, size=(240, 320), seed=1)
    proc = subprocess.Popen([sys.executable, "-m", "edgepipe.apps.detect", "--model", str(YOLO), "--provider", "cpu",
                             "--source", str(long_video), "--no-show", "--save", str(tmp_path / "out.mp4"),
                             "--jsonl", str(tmp_path / "t.jsonl")], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not (tmp_path / "t.jsonl").exists() or (tmp_path / "t.jsonl").stat().st_size
                                      < 2000):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in out
    records = read_jsonl(tmp_path / "t.jsonl")  # every line complete JSON
    assert 0 < len(records) < 3000
    saved = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    frames = 0
    while saved.read()[0]:
        frames += 1
    assert frames == len(records)


def test_http_stream_that_drops_reconnects_then_gives_up(tmp_path, capsys, caplog, video):
    """A real MJPEG stream over HTTP (edgepipe's own live view as the camera): it goes down, comes back on the
    same port (the app reconnects), goes down for good (the app gives up after --retries, outputs kept)."""
    from edgepipe.apps.stream.web import LiveView

    caplog.set_level(logging.INFO, "edgepipe.source")
    frames = []
    cap = cv2.VideoCapture(str(video))
    while len(frames) < 30 and (got := cap.read())[0]:
        frames.append(got[1])
    first = LiveView("127.0.0.1", 0).start()
    port = first.port  # the port it bound

    def camera() -> None:
        view = first
        for session in range(2):
            for i in range(60):
                view.publish(frames[i % len(frames)], {})
                time.sleep(0.02)
            view.close()  # the stream drops
            if session == 0:
                time.sleep(0.3)
                view = LiveView("127.0.0.1", port).start()  # and comes back

    thread = threading.Thread(target=camera, daemon=True)
    thread.start()
    code = detect("--source", f"http://127.0.0.1:{port}/stream.mjpg", "--jsonl", str(tmp_path / "s.jsonl"),
                  "--retries", "2")
    thread.join()
    err = capsys.readouterr().err
    assert code == 2 and "did not come back after 2 reconnect attempt(s)" in err, err
    assert "reconnected" in caplog.text
    records = read_jsonl(tmp_path / "s.jsonl")  # written up to the end, every line complete
    assert len(records) > 10 and [r["frame"] for r in records] == sorted(r["frame"] for r in records)


@pytest.mark.parametrize(("option", "message"), [
    (["--conf", "2"], "--conf must be in [0, 1], but got 2.0"),
    (["--iou", "-0.1"], "--iou must be in [0, 1], but got -0.1"),
    (["--max-det", "0"], "--max-det must be >= 1, but got 0"),
    (["--classes", "dog"], "--classes: unknown class 'dog'; the model's classes are circle, square, triangle"),
    (["--line", "320,0,320"],
     "--line takes x1,y1,x2,y2 or [SOURCE:][NAME=]x1,y1,x2,y2 in frame pixels, but got '320,0,320'"),
    (["--line", "a=1,1,1,1"], "--line needs two different end points, but got 'a=1,1,1,1'"),
    (["--zone", "=1,2,3,4"], "--zone needs a name before '=', but got '=1,2,3,4'"),
    (["--line", "a=0,0,9,9", "--line", "a=1,1,5,5"], "--line names must differ for each source, but got ['a', 'a']"),
])
def test_bad_detection_options_are_one_line_errors(video, capsys, option, message):
    assert detect("--source", str(video), *option) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
