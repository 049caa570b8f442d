"""Several sources in one detection run: each source's detections equal a run on it alone, per-source outputs,
counting lines and zones per source, a lost stream among files, and a model with a fixed batch."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.truth import read_jsonl
from edgepipe.apps.stream.web import LiveView
from edgepipe.export.data.detection import make_video
from tests.detect_runs import YOLO, detect
from tests.onnx_graphs import save, ultralytics_yolov8_model


@pytest.fixture(scope="module")
def second_video(tmp_path_factory) -> Path:
    """Another generated 640x480 test video, shorter than the shared one (120 frames)."""
    path = tmp_path_factory.mktemp("second") / "other.mp4"
    make_video(path, n_frames=50, seed=8)
    return path


def by_frame(records: list[dict]) -> dict[int, list[dict]]:
    return {r["frame"]: r["detections"] for r in records}


def assert_same_detections(together: dict[int, list[dict]], alone: dict[int, list[dict]]) -> None:
    """Frame by frame the same classes and boxes (JSON keeps 2 decimals: one rounding step apart at most)."""
    assert together.keys() == alone.keys()
    for frame, dets in alone.items():
        got = together[frame]
        assert [d["class_id"] for d in got] == [d["class_id"] for d in dets], frame
        if dets:
            assert np.allclose([d["xyxy"] for d in got], [d["xyxy"] for d in dets], atol=0.0101), frame
            assert np.allclose([d["score"] for d in got], [d["score"] for d in dets], atol=2e-4), frame


def test_two_files_together_give_each_what_it_gets_alone(tmp_path, video, second_video):
    sources = tmp_path / "cameras.txt"
    sources.write_text(f"# the two cameras\nfront={video}\n\nback={second_video}\n")
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    assert detect("--sources", str(sources), "--jsonl", str(tmp_path / "many.jsonl"), "--save", str(out),
                  "--summary", str(summary)) == 0
    records = read_jsonl(tmp_path / "many.jsonl")
    assert {r["source"] for r in records} == {"front", "back"}
    for name, path in (("front", video), ("back", second_video)):
        assert detect("--source", str(path), "--jsonl", str(tmp_path / f"{name}.jsonl")) == 0
        alone = read_jsonl(tmp_path / f"{name}.jsonl")
        assert "source" not in alone[0]  # the only, unnamed source: lines as before
        assert_same_detections(by_frame([r for r in records if r["source"] == name]), by_frame(alone))
    report = json.loads(summary.read_text())
    assert {name: s["frames"] for name, s in report["sources"].items()} == {"front": 120, "back": 50}
    assert report["batch"] == 2 and report["batches"] < 170 * 0.75  # most model calls ran both sources' frames
    for name, frames in (("front", 120), ("back", 50)):  # each source's own annotated video
        cap = cv2.VideoCapture(str(out / f"{name}.mp4"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == frames and cap.read()[0]


def test_lines_and_zones_for_one_source_or_all(tmp_path, video, second_video, capsys):
    assert detect("--source", f"a={video}", "--source", f"b={second_video}", "--jsonl", str(tmp_path / "c.jsonl"),
                  "--line", "a:mid=320,0,320,480", "--zone", "left=0,0,320,480", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["sources"]["a"]["crossings"]) == {"mid"} and report["sources"]["b"]["crossings"] == {}
    assert set(report["sources"]["a"]["zones"]) == set(report["sources"]["b"]["zones"]) == {"left"}
    records = read_jsonl(tmp_path / "c.jsonl")
    assert all(("lines" in r) == (r["source"] == "a") for r in records)
    assert all(r["detections"] and "track_id" in r["detections"][0] for r in records if r["source"] == "a"
               and r["detections"])  # a's line tracks its objects; b is not tracked
    assert not any("track_id" in d for r in records if r["source"] == "b" for d in r["detections"])


@pytest.mark.parametrize(("argv", "message"), [
    # a line for a source that is not in the run
    (["--line", "c:mid=1,2,3,4"], "--line names source(s) ['c'], but the sources are ['a', 'b']"),
    # a video file for two sources' outputs
    (["--save", "out.mp4"], "--save takes a folder with several sources"),
    # two sources with one name
    (["--source", "a=x.mp4"], "source names must differ, but got ['a', 'b', 'a']"),
])
def test_bad_options_for_several_sources(tmp_path, video, second_video, capsys, argv, message):
    code = detect("--source", f"a={video}", "--source", f"b={second_video}", *argv)
    assert code == 2 and message in capsys.readouterr().err


def test_a_lost_stream_does_not_stop_the_others(tmp_path, video, capsys):
    """Two real MJPEG streams over HTTP and a video file: one stream stops for good early; the other stream and the
    file go on to --max-frames, the lost one is reported, the run exits 1."""
    first = cv2.VideoCapture(str(video)).read()[1]
    dying, healthy = LiveView("127.0.0.1", 0).start(), LiveView("127.0.0.1", 0).start()
    done = threading.Event()

    def publish() -> None:
        for i in range(3000):
            if i < 20:
                dying.publish(first, {})
            elif i == 20:
                dying.close()  # gone for good
            healthy.publish(first, {})
            if done.wait(0.02):
                break
        healthy.close()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    try:
        code = detect("--source", f"cam=http://127.0.0.1:{dying.port}/stream.mjpg", "--source",
                      f"live=http://127.0.0.1:{healthy.port}/stream.mjpg", "--source", f"file={video}",
                      "--jsonl", str(tmp_path / "s.jsonl"), "--retries", "1", "--max-frames", "60")
    finally:
        done.set()
        thread.join()
    err = capsys.readouterr().err
    assert code == 1 and "lost for good: cam" in err and "live" not in err.split("lost for good:")[1], err
    records = read_jsonl(tmp_path / "s.jsonl")
    assert [r["frame"] for r in records if r["source"] == "file"] == list(range(60))  # every frame, in order
    assert len([r for r in records if r["source"] == "live"]) == 60


def test_a_model_with_a_fixed_batch_runs_one_frame_at_a_time(tmp_path, caplog, capsys):
    raw = np.zeros((1, 5, 1), np.float32)
    raw[0, :, 0] = [32, 32, 20, 10, 0.9]  # one box of class 0 in the 64 x 64 input
    model = save(ultralytics_yolov8_model(raw, ("thing",)), tmp_path / "fixed.onnx")
    for k in range(2):
        folder = tmp_path / f"images{k}"
        folder.mkdir()
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((64, 64, 3), 50 * i, np.uint8))
    caplog.set_level(logging.INFO, "edgepipe.detect")
    assert main(["detect", "--model", str(model), "--provider", "cpu", "--no-show", "--source",
                 str(tmp_path / "images0"), "--source", str(tmp_path / "images1"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["batch"] == 1 and report["batches"] == 6 and "fixed batch of 1" in caplog.text
    assert all(s["counts"] == {"thing": 3} for s in report["sources"].values())


def test_the_small_yolo_takes_a_batch(video):
    # The guard for the test above: the asset's batch axis is dynamic, so its sources run together.
    import onnx

    dim = onnx.load(str(YOLO)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param and not dim.dim_value
