"""The detection app's zones, counting lines and tracks on generated videos: parsing --zone, zone counts, line
crossings against the ground truth's object ids, agnostic NMS, and track ids that follow the objects."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgepipe.apps.detect.truth import read_jsonl, truth_crossings
from edgepipe.apps.detect.zones import Zone, parse_zone
from edgepipe.export.data.detection import make_video
from edgepipe.postprocess.iou import box_iou
from tests.detect_runs import detect


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


def test_the_demo_video_scores_against_its_truth(tmp_path):
    """The demo's own video (its frames, seed, objects and line) through the small YOLO: recall and precision at IoU
    0.5 of at least 0.9, and the middle line's counts each way equal to the truth's (several each way)."""
    from edgepipe.apps.demo import LINE, LINE_X, OBJECTS, DemoOptions
    from edgepipe.apps.detect.truth import match

    video = tmp_path / "demo.mp4"
    truth = read_jsonl(make_video(video, n_frames=DemoOptions.frames, seed=DemoOptions.seed, n_objects=OBJECTS,
                                  crossing=True))
    line = f"{LINE.name}={','.join(f'{v:g}' for v in LINE.xyxy)}"
    assert detect("--source", str(video), "--jsonl", str(tmp_path / "d.jsonl"), "--line", line,
                  "--summary", str(tmp_path / "d.json")) == 0
    score = match(read_jsonl(tmp_path / "d.jsonl"), truth, iou=0.5)
    assert score.recall >= 0.9 and score.precision >= 0.9, score
    want = truth_crossings(truth, LINE_X)
    assert min(want.values()) >= 3
    got = json.loads((tmp_path / "d.json").read_text())["crossings"][LINE.name]
    assert {k: got[k] for k in want} == want
