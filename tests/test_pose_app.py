"""Landmarks in the apps: an Ultralytics YOLOv8 pose file runs as it is (decoder from its metadata), its keypoints
reach the JSON lines in frame pixels, the overlay draws the present ones, the browser view shows them."""

import json
import urllib.request

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.stream.draw import KEYPOINT_MIN_SCORE, class_color, draw_detections
from edgepipe.postprocess.detections import Detections
from edgepipe.runtime import load
from tests.onnx_graphs import save, ultralytics_yolov8_model

K = 17  # COCO's person keypoints, as Ultralytics' pose models have them


@pytest.fixture
def pose_file(tmp_path):
    """An Ultralytics-style YOLOv8 pose export (kpt_shape [17, 3], one class) whose output holds one person and one
    background column, and its keypoints in input pixels (17, 2) and visibilities (17,)."""
    rng = np.random.default_rng(0)
    points = rng.uniform(18, 46, (K, 2))  # inside the 64 x 64 input's picture (rows 8..56)
    visible = np.where(np.arange(K) % 3 == 0, 0.2, 0.9)  # every third keypoint mostly hidden
    raw = np.zeros((1, 4 + 1 + 3 * K, 2), np.float32)
    raw[0, :5, 0] = [32, 32, 30, 40, 0.8]  # cx, cy, w, h, person score
    raw[0, 5:, 0] = np.concatenate([points, visible[:, None]], axis=1).reshape(-1)
    raw[0, :5, 1] = [10, 10, 4, 4, 0.01]  # background
    path = save(ultralytics_yolov8_model(raw, ("person",), kpt_shape=(K, 3)), tmp_path / "pose.onnx")
    return path, points, visible


def test_ultralytics_pose_metadata_is_read(pose_file):
    meta = load(pose_file[0], providers="cpu").meta
    assert (meta.head, meta.kpt_shape, meta.class_names, meta.source) == ("yolov8-pose", (K, 3), ("person",),
                                                                         "ultralytics")


def test_detect_writes_keypoints_in_frame_pixels_and_draws_the_present_ones(tmp_path, pose_file):
    path, points, visible = pose_file
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((96, 128, 3), 60, np.uint8))  # letterboxed at scale 0.5: 8 px bands
    assert main(["detect", "--model", str(path), "--source", str(image), "--provider", "cpu", "--no-show",
                 "--jsonl", str(tmp_path / "out.jsonl"), "--save", str(tmp_path / "out")]) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    (person,) = record["detections"]
    expected = (points - [0, 8]) / 0.5  # input pixels back to the frame: minus the band, divided by the scale
    np.testing.assert_allclose(person["keypoints"], expected, atol=0.01)
    np.testing.assert_allclose(person["keypoint_scores"], visible, atol=1e-4)
    drawn = cv2.imread(str(tmp_path / "out" / "frame.png")).astype(int)
    color = np.array(class_color(0))
    for (x, y), v in zip(expected, visible, strict=True):
        if v >= KEYPOINT_MIN_SCORE:  # a dot (the hidden ones are left out: test_overlay_draws_keypoints_but_not_...)
            assert np.abs(drawn[round(y), round(x)] - color).max() < 40


def test_overlay_draws_keypoints_but_not_absent_slots():
    frame = np.full((80, 80, 3), 60, np.uint8)
    det = Detections(np.array([[10, 10, 70, 70]], np.float32), np.array([0.9], np.float32), np.array([2]),
                     keypoints=np.array([[[20, 30], [50, 40], [40, 60]]], np.float32),
                     keypoint_scores=np.array([[1.0, 1.0, 0.0]], np.float32))  # the third slot: the class has none
    out = draw_detections(frame, det)
    color = np.array(class_color(2))
    assert np.abs(out[30, 20].astype(int) - color).max() < 40 and np.abs(out[40, 50].astype(int) - color).max() < 40
    assert (out[60, 40] == 60).all()  # nothing at the absent slot
    assert (draw_detections(frame, Detections(det.xyxy, det.scores, det.class_ids))[30, 20] == 60).all()


def test_the_browser_view_shows_the_keypoints(tmp_path, pose_file, monkeypatch):
    from edgepipe.apps.detect.service import DetectOptions, detect
    from edgepipe.apps.options import ModelOptions
    from edgepipe.apps.stream.loop import StreamOptions
    from edgepipe.apps.stream.web import LiveView

    path, points, visible = pose_file
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.full((96, 128, 3), 60, np.uint8))
    seen = {}
    publish = LiveView.publish

    def grab(view, frame, stats, source=""):  # what the page's stream gets, read back over HTTP as a browser would
        publish(view, frame, stats, source)
        with urllib.request.urlopen(view.url + "frame.jpg", timeout=10) as response:
            seen["jpeg"] = response.read()

    monkeypatch.setattr(LiveView, "publish", grab)
    detect(DetectOptions(ModelOptions(path, provider="cpu"), StreamOptions(str(image), show=False,
                                                                           serve="127.0.0.1:0")))
    shown = cv2.imdecode(np.frombuffer(seen["jpeg"], np.uint8), cv2.IMREAD_COLOR).astype(int)
    color = np.array(class_color(0))
    for (x, y), v in zip((points - [0, 8]) / 0.5, visible, strict=True):
        if v >= KEYPOINT_MIN_SCORE:
            assert np.abs(shown[round(y), round(x)] - color).max() < 60  # the dot, through JPEG
