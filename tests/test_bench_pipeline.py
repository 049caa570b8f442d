"""`edgepipe bench MODEL --pipeline SOURCE`: the detect pipeline against bare session.run on the same frames."""

import json

import cv2
import numpy as np
import pytest

from edgepipe.apps.cli import main
from edgepipe.apps.detect.pipeline import Detector
from edgepipe.runtime import load
from tests.detect_runs import YOLO


def frame_count(path) -> int:
    cap, n = cv2.VideoCapture(str(path)), 0
    while cap.read()[0]:
        n += 1
    return n


def test_pipeline_against_bare(video, capsys):
    assert main(["bench", str(YOLO), "--provider", "cpu", "--pipeline", str(video), "--frames", "0", "--rounds",
                 "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == frame_count(video) and report["rounds"] == 2
    assert report["provider"] == "CPUExecutionProvider"
    assert report["pipeline_over_bare"] == pytest.approx(report["pipeline_fps"] / report["bare_fps"], abs=1e-3)
    assert set(report["stages_ms"]) == {"read", "preprocess", "model", "postprocess", "write"}
    assert all(ms > 0 for ms in report["stages_ms"].values())


def test_pipeline_thresholds_and_detections_per_frame(video, capsys):
    """--conf and --iou reach the pipeline: its median count of detections per frame is the Detector's own with
    those thresholds, on the same frames."""
    assert main(["bench", str(YOLO), "--provider", "cpu", "--pipeline", str(video), "--frames", "12", "--rounds",
                 "1", "--conf", "0.02", "--iou", "0.9", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["conf"], report["iou"]) == (0.02, 0.9)
    cap, frames = cv2.VideoCapture(str(video)), []
    while len(frames) < 12 and (got := cap.read())[0]:
        frames.append(got[1])
    model = load(YOLO, providers="cpu", warmup=0)
    assert report["detections"] == np.median([len(d) for d in Detector(model, 0.02, 0.9)(frames)])
    assert report["detections"] > np.median([len(d) for d in Detector(model)(frames)])  # the defaults keep fewer


def test_pipeline_text_and_frame_limit(video, capsys):
    assert main(["bench", str(YOLO), "--provider", "cpu", "--pipeline", str(video), "--frames", "20",
                 "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("20 frames, medians of 1 interleaved round(s) on CPUExecutionProvider, conf 0.25, iou 0.45, ")
    assert "x bare" in out and "one frame's steps alone: read" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pipeline", "0"], "--pipeline needs a file source"),
        (["--pipeline", "{video}", "--compare", str(YOLO)], "--pipeline times the detect pipeline alone: drop "
                                                             "--compare"),
        (["--pipeline", "{video}", "--rounds", "0"], "--rounds >= 1"),
        (["--pipeline", "{video}", "--runs", "5"], "--pipeline times the detect pipeline alone: drop --runs"),
        (["--pipeline", "{video}", "--warmup", "0"], "drop --warmup"),
        (["--frames", "3"], "--frames applies only with --pipeline SOURCE"),
        (["--rounds", "2", "--no-rect"], "--rounds, --no-rect apply only with --pipeline SOURCE"),
        (["--conf", "0.5", "--iou", "0.3"], "--conf, --iou apply only with --pipeline SOURCE"),
        (["--pipeline", "{video}", "--conf", "2"], "--conf must be in [0, 1]"),
    ],
)
def test_pipeline_bad_input(video, capsys, extra, message):
    args = [a.format(video=video) for a in extra]
    assert main(["bench", str(YOLO), "--provider", "cpu", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
