"""The detection app end to end on the trained small YOLO: recall on a generated video and the same detections
for every sink, the JSONL records, the class filter and summary, an image folder, class colors, the live view in
headless Chromium, and an Ultralytics-style export."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.request

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.service import DetectOptions
from edgepipe.apps.detect.service import detect as detect_service
from edgepipe.apps.detect.truth import match, read_jsonl
from edgepipe.apps.options import ModelOptions
from edgepipe.apps.stream.draw import class_color
from edgepipe.apps.stream.loop import StreamOptions
from tests.detect_runs import YOLO, detect
from tests.onnx_graphs import save, ultralytics_yolov8_model


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


def test_class_colors_are_stable_and_distinct():
    assert class_color(3) == class_color(3)
    colors = {class_color(i) for i in range(20)}
    assert len(colors) == 20


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
    assert result["summary"].one().frames > 120  # it looped past the clip's end


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
