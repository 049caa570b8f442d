"""The detection app: sources, capture thread, sinks, faults, and recall on a generated video with the trained YOLO."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.service import DetectOptions
from edgepipe.apps.detect.service import detect as detect_service
from edgepipe.apps.detect.truth import match, read_jsonl, truth_crossings
from edgepipe.apps.detect.zones import Zone, parse_zone
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.draw import class_color
from edgepipe.apps.stream.loop import StreamOptions
from edgepipe.apps.stream.sources import Capture, SourceError, SourceSpec, parse_source
from edgepipe.export.data.detection import make_video
from edgepipe.postprocess.errors import UserError
from edgepipe.postprocess.iou import box_iou
from edgepipe.runtime.metadata import from_flat, to_metadata_props
from tests.onnx_graphs import conv_model, save, ultralytics_yolov8_model

ROOT = Path(__file__).resolve().parents[1]
YOLO = ROOT / "tests" / "assets" / "yolo-small.onnx"


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    """A generated 640x480 test video (mp4) with ground truth beside it."""
    path = tmp_path_factory.mktemp("video") / "shapes.mp4"
    make_video(path, n_frames=120, seed=3)
    return path


def detect(*args: str) -> int:
    return main(["detect", "--model", str(YOLO), "--provider", "cpu", "--no-show", *args])


# Sources.

def test_parse_source_kinds(tmp_path, video):
    assert parse_source("0") == SourceSpec("camera", 0)
    assert parse_source("/dev/video2") == SourceSpec("camera", "/dev/video2")
    assert parse_source("rtsp://cam.local/stream").kind == "stream"
    assert parse_source(str(video)) == SourceSpec("video", str(video))
    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    folder = parse_source(str(tmp_path))
    assert folder.kind == "images" and [Path(p).name for p in folder.paths] == ["a.jpg", "b.png"]
    assert [Path(p).name for p in parse_source(str(tmp_path / "*.png")).paths] == ["b.png"]
    assert parse_source(str(tmp_path / "a.jpg")).paths == (str(tmp_path / "a.jpg"),)


@pytest.mark.parametrize(("text", "error", "message"), [
    ("missing.mp4", UserError, "not found: expected a camera index"),
    ("", ValueError, "source is empty"),
    ("nothing-*.png", ValueError, "matches no images"),
])
def test_parse_source_errors(text, error, message):
    with pytest.raises(error, match=message):
        parse_source(text)


class FakeCamera:
    """A cv2.VideoCapture stand-in: delivers `frames` numbered frames, then read() fails (an unplugged camera)."""

    def __init__(self, frames: int, start: int = 0, delay: float = 0.0) -> None:
        self.left, self.next, self.delay = frames, start, delay

    def isOpened(self) -> bool:
        return True

    def read(self):
        time.sleep(self.delay)
        if self.left == 0:
            return False, None
        self.left -= 1
        self.next += 1
        return True, np.full((8, 8, 3), self.next - 1, np.uint8)

    def get(self, prop):
        return 30.0

    def release(self):
        pass


class Closed(FakeCamera):
    def isOpened(self) -> bool:
        return False


def test_live_source_reconnects_then_gives_up():
    opened = []

    def opener(target):
        opened.append(target)
        return FakeCamera(5) if len(opened) == 1 else Closed(0)

    capture = Capture(SourceSpec("camera", 0), retries=3, backoff=0.01, max_backoff=0.02, opener=opener).open()
    got = []
    with pytest.raises(SourceError, match="did not come back after 3 reconnect attempt"):
        got.extend(f.image[0, 0, 0] for f in capture.frames())
    capture.close()
    assert len(opened) == 4  # the first open and three attempts
    assert len(got) >= 1 and got == sorted(got)


def test_live_source_comes_back_after_a_drop():
    cameras = [FakeCamera(3), Closed(0), FakeCamera(4, start=100)]
    capture = Capture(SourceSpec("stream", "rtsp://x"), retries=3, backoff=0.01,
                      opener=lambda t: cameras.pop(0) if cameras else Closed(0))
    capture.open()
    seen = []
    with pytest.raises(SourceError):
        for f in capture.frames():
            seen.append(int(f.image[0, 0, 0]))
            time.sleep(0.01)
    assert capture.stats.reconnects == 1
    assert 100 in seen or 103 in seen  # frames from the reopened stream arrived


def test_live_source_keeps_only_the_newest_frame():
    capture = Capture(SourceSpec("camera", 0), retries=0, opener=lambda t: FakeCamera(200, delay=0.001)).open()
    indices = []
    with pytest.raises(SourceError):
        for f in capture.frames():
            indices.append(f.index)
            time.sleep(0.02)  # a slow model
    assert capture.stats.dropped > 50
    assert indices == sorted(indices) and len(indices) + capture.stats.dropped == capture.stats.read
    assert max(np.diff(indices)) > 1  # frames were skipped, not queued


def test_file_source_delivers_every_frame_in_order(video):
    capture = Capture(parse_source(str(video)), queue_size=2).open()
    indices = []
    for f in capture.frames():
        indices.append(f.index)
        time.sleep(0.002)
    capture.close()
    assert indices == list(range(120)) and capture.stats.dropped == 0


def test_loop_plays_a_file_again_with_frame_numbers_going_on(video):
    capture = Capture(parse_source(str(video)), loop=True).open()
    frames = []
    for f in capture.frames():
        frames.append(f)
        if len(frames) == 250:
            break
    capture.close()
    assert [f.index for f in frames] == list(range(250))  # the 120-frame clip, twice and then some
    assert np.array_equal(frames[0].image, frames[120].image) and frames[120].time == pytest.approx(4.0)


def test_stop_event_ends_a_stalled_live_source():
    stop = threading.Event()
    capture = Capture(SourceSpec("camera", 0), opener=lambda t: FakeCamera(10**9, delay=0.5)).open()
    threading.Timer(0.3, stop.set).start()
    t0 = time.perf_counter()
    frames = list(capture.frames(stop))  # a frame each 0.5 s: at most one before the stop
    capture.close()
    assert len(frames) <= 1 and time.perf_counter() - t0 < 2.0


# The app end to end on the trained small YOLO.

def test_recall_on_generated_video_and_same_detections_for_every_sink(tmp_path, video):
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "a.jsonl")) == 0
    predicted = read_jsonl(tmp_path / "a.jsonl")
    result = match(predicted, read_jsonl(video.with_suffix(".jsonl")), iou=0.5)
    assert result.truth > 200 and result.recall >= 0.9, result
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "b.jsonl"), "--save", str(tmp_path / "out.avi"),
                  "--serve", "127.0.0.1:0") == 0
    assert read_jsonl(tmp_path / "b.jsonl") == predicted
    out = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(out.get(cv2.CAP_PROP_FRAME_COUNT)) == 120
    ok, first = out.read()
    original = cv2.VideoCapture(str(video)).read()[1]
    assert ok and first.shape == original.shape and np.abs(first.astype(int) - original).max() > 100  # overlay drawn


def test_jsonl_lines_are_original_frame_pixels(tmp_path, video):
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "d.jsonl"), "--max-frames", "5") == 0
    records = read_jsonl(tmp_path / "d.jsonl")
    assert [r["frame"] for r in records] == list(range(5))
    assert records[1]["time"] == pytest.approx(1 / 30, abs=1e-3)
    for r in records:
        for d in r["detections"]:
            assert set(d) == {"xyxy", "score", "class_id", "class_name"}
            x1, y1, x2, y2 = d["xyxy"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480 and d["class_name"] in ("circle", "square", "triangle")


def test_class_filter_and_summary_counts(tmp_path, video, capsys):
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "c.jsonl"), "--classes", "circle",
                  "--summary", str(tmp_path / "s.json")) == 0
    names = {d["class_name"] for r in read_jsonl(tmp_path / "c.jsonl") for d in r["detections"]}
    assert names == {"circle"}
    summary = json.loads((tmp_path / "s.json").read_text())
    n = sum(len(r["detections"]) for r in read_jsonl(tmp_path / "c.jsonl"))
    assert summary["counts"] == {"circle": n} and summary["frames"] == 120
    assert "circle" in capsys.readouterr().out


def test_folder_with_a_corrupt_image(tmp_path, video, capsys):
    cap = cv2.VideoCapture(str(video))
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.jpg"), cap.read()[1])
    (folder / "1b.jpg").write_bytes(b"not a jpeg")
    assert detect("--source", str(folder), "--jsonl", str(tmp_path / "f.jsonl"), "--save", str(tmp_path / "ann")) == 0
    records = read_jsonl(tmp_path / "f.jsonl")
    assert [r["image"] for r in records] == ["0.jpg", "1.jpg", "2.jpg"]
    assert sorted(p.name for p in (tmp_path / "ann").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert "skipped" in capsys.readouterr().out


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


def test_class_colors_are_stable_and_distinct():
    assert class_color(3) == class_color(3)
    colors = {class_color(i) for i in range(20)}
    assert len(colors) == 20


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


def test_live_view_in_headless_chromium_shows_annotated_frames(tmp_path, video):
    from tests import browser

    browser.require_chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    options = DetectOptions(ModelOptions(YOLO, "cpu"), StreamOptions(str(video), loop=True, show=False,
                                                                     serve=f"127.0.0.1:{port}"))
    stop, result = threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(summary=detect_service(options, stop)), daemon=True)
    thread.start()
    deadline, stats = time.time() + 60, {}
    while time.time() < deadline and not stats.get("counts") and thread.is_alive():
        time.sleep(0.05)
        try:
            with urllib.request.urlopen(url + "stats.json", timeout=5) as r:
                stats = json.loads(r.read())
        except OSError:
            continue  # not serving yet
    try:
        assert stats.get("counts"), "the live view never showed detections"
        with urllib.request.urlopen(url + "frame.jpg", timeout=5) as r:
            served = cv2.imdecode(np.frombuffer(r.read(), np.uint8), cv2.IMREAD_COLOR)
        dom = browser.dump_dom(url, timeout_s=90)
        png = browser.screenshot(url, tmp_path / "live.png", timeout_s=90)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert re.search(r'id="fps"[^>]*>\d', dom) and re.search(r'id="counts"[^>]*><li>(circle|square|triangle): ', dom)
    status = cv2.cvtColor(served[2:14, 2:60], cv2.COLOR_BGR2GRAY)  # the overlay's status line: "NN.N FPS  model ..."
    assert abs(int(np.median(status)) - 40) < 20 and (status > 180).sum() > 10  # dark box, white text
    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert len(np.unique(shot.reshape(-1, 3), axis=0)) > 2000, f"no video frame on the screenshot {png}"
    assert result["summary"].frames > 120  # it looped past the clip's end


def test_an_ultralytics_style_export_runs_as_it_is(tmp_path):
    """A YOLOv8-head ONNX with Ultralytics' metadata keys (no edgepipe key): the app picks the yolov8 decoder and
    the centered letterbox from that metadata and maps the boxes back to the image exactly."""
    raw = np.zeros((1, 7, 2), np.float32)  # (1, 4 + C, N): cx, cy, w, h in input pixels, then 3 class scores
    raw[0, :, 0] = [32, 32, 20, 10, 0.0, 0.0, 0.9]  # a car
    raw[0, :, 1] = [10, 50, 8, 8, 0.6, 0.0, 0.0]  # a person
    onnx_path = save(ultralytics_yolov8_model(raw, ("person", "bicycle", "car")), tmp_path / "v8.onnx")
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((96, 128, 3), 60, np.uint8))  # letterboxed at scale 0.5, 8 px bands
    assert main(["detect", "--model", str(onnx_path), "--source", str(image), "--provider", "cpu", "--no-show",
                 "--jsonl", str(tmp_path / "v8.jsonl")]) == 0
    (record,) = read_jsonl(tmp_path / "v8.jsonl")
    got = [(d["class_name"], d["score"], d["xyxy"]) for d in record["detections"]]
    assert got == [("car", 0.9, [44.0, 38.0, 84.0, 58.0]), ("person", 0.6, [12.0, 76.0, 28.0, 92.0])]


@pytest.mark.parametrize(("text", "zone"), [
    ("0,0,320,240", Zone("zone1", (0.0, 0.0, 320.0, 240.0))),
    ("door=10.5,20,30,40", Zone("door", (10.5, 20.0, 30.0, 40.0))),
])
def test_parse_zone(text, zone):
    assert parse_zone(text, 0) == zone


@pytest.mark.parametrize("text", ["1,2,3", "a=1,2,x,4", "5,5,5,9", "=1,2,3,4"])
def test_parse_zone_errors(text):
    with pytest.raises(ValueError, match="--zone"):
        parse_zone(text, 0)


def test_zone_counts_against_a_loop(tmp_path, video):
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "z.jsonl"), "--zone", "left=0,0,320,480",
                  "--zone", "320,0,640,480", "--summary", str(tmp_path / "z.json")) == 0
    peak = {"left": 0, "zone2": 0}
    for record in read_jsonl(tmp_path / "z.jsonl"):
        want = {"left": 0, "zone2": 0}
        for d in record["detections"]:
            cx = (d["xyxy"][0] + d["xyxy"][2]) / 2
            want["left" if cx <= 320 else "zone2"] += 1
            if cx == 320:
                want["zone2"] += 1  # on the shared edge: inside both
        assert record["zones"] == want
        peak = {k: max(peak[k], want[k]) for k in peak}
    summary = json.loads((tmp_path / "z.json").read_text())
    assert {k: v["peak"] for k, v in summary["zones"].items()} == peak and max(peak.values()) >= 1


@pytest.mark.parametrize("seed", [3, 4])
def test_line_counts_equal_the_generated_crossings(tmp_path, seed):
    """The app tracks the small YOLO's detections and counts the objects crossing the middle of a generated
    video, per direction, exactly as many as the ground truth's object ids say. Seeds 3 and 4 have frames where
    the detector puts two boxes of different classes on one object."""
    video = tmp_path / "cross.mp4"
    truth = read_jsonl(make_video(video, n_frames=200, seed=seed))
    want = truth_crossings(truth, 320)
    assert sum(want.values()) >= 2
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "c.jsonl"), "--line", "mid=320,0,320,480",
                  "--summary", str(tmp_path / "c.json"), "--save", str(tmp_path / "c.mp4")) == 0
    summary = json.loads((tmp_path / "c.json").read_text())
    got = summary["crossings"]["mid"]
    assert {k: got[k] for k in want} == want
    assert sum(sum(c.values()) for c in got["by_class"].values()) == sum(want.values())
    records = read_jsonl(tmp_path / "c.jsonl")
    assert records[-1]["lines"] == {"mid": want}
    assert all("track_id" in d for r in records for d in r["detections"])
    cap = cv2.VideoCapture(str(tmp_path / "c.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 200


def test_agnostic_nms_leaves_no_overlapping_boxes_of_other_classes(tmp_path):
    """Seed 4's video makes the small YOLO put boxes of two classes on one object; --agnostic-nms removes them:
    checked against a brute-force IoU over every pair of kept boxes."""
    video = tmp_path / "dup.mp4"
    make_video(video, n_frames=200, seed=4)

    def overlapping_pairs(path: Path) -> int:
        pairs = 0
        for record in read_jsonl(path):
            boxes = np.array([d["xyxy"] for d in record["detections"]], np.float32).reshape(-1, 4)
            iou = box_iou(boxes, boxes)
            pairs += int(np.count_nonzero(np.triu(iou > 0.45, k=1)))
        return pairs

    assert detect("--source", str(video), "--jsonl", str(tmp_path / "aware.jsonl")) == 0
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "agnostic.jsonl"), "--agnostic-nms") == 0
    assert overlapping_pairs(tmp_path / "aware.jsonl") > 0
    assert overlapping_pairs(tmp_path / "agnostic.jsonl") == 0


def test_track_ids_follow_the_objects(tmp_path, video):
    """--track alone: every detection matched to a ground-truth object carries that object's one track id."""
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "t.jsonl"), "--track") == 0
    tracks_of: dict[int, set[int]] = {}
    for record, truth in zip(read_jsonl(tmp_path / "t.jsonl"), read_jsonl(video.with_suffix(".jsonl")), strict=True):
        assert "lines" not in record
        boxes = np.array(truth["boxes"], np.float32).reshape(-1, 4)
        for d in record["detections"]:
            overlap = box_iou(np.array([d["xyxy"]], np.float32), boxes)[0] if len(boxes) else np.zeros(0)
            if overlap.size and overlap.max() >= 0.5:
                tracks_of.setdefault(truth["ids"][int(overlap.argmax())], set()).add(d["track_id"])
    assert len(tracks_of) >= 2 and all(len(t) == 1 for t in tracks_of.values()), tracks_of


@pytest.mark.parametrize(("option", "message"), [
    (["--conf", "2"], "--conf must be in [0, 1], but got 2.0"),
    (["--iou", "-0.1"], "--iou must be in [0, 1], but got -0.1"),
    (["--max-det", "0"], "--max-det must be >= 1, but got 0"),
    (["--classes", "dog"], "--classes: unknown class 'dog'; the model's classes are circle, square, triangle"),
    (["--line", "320,0,320"], "--line takes x1,y1,x2,y2 or NAME=x1,y1,x2,y2 in frame pixels, but got '320,0,320'"),
    (["--line", "a=1,1,1,1"], "--line needs two different end points, but got 'a=1,1,1,1'"),
    (["--zone", "=1,2,3,4"], "--zone needs a name before '=', but got '=1,2,3,4'"),
    (["--line", "a=0,0,9,9", "--line", "a=1,1,5,5"], "--line names must differ, but got ['a', 'a']"),
])
def test_bad_detection_options_are_one_line_errors(video, capsys, option, message):
    assert detect("--source", str(video), *option) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
