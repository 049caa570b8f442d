"""The typed Item on its way to the sinks: what the JSON Lines sink writes and what the browser view shows."""

import json

import numpy as np

from edgepipe.apps.stream.sinks import Item, JsonlSink, view_stats
from edgepipe.apps.stream.sources import Frame
from edgepipe.postprocess.detections import Detections

FRAME = Frame(7, 0.25, np.zeros((48, 64, 3), np.uint8), "scene.png")
BOXES = Detections(np.array([[1, 2, 11, 12], [20, 5, 30, 25.0]]), np.array([0.9, 0.4]), np.array([0, 1]),
                   ("circle", "square"))


def item(**fields) -> Item:
    return Item(FRAME, BOXES, "status", 29.96, 3.456, {"circle": 1, "square": 1}, **fields)


def test_jsonl_record_from_the_typed_fields(tmp_path):
    zones, lines = {"left": 1}, {"door": {"left_to_right": 3, "right_to_left": 0}}
    sink = JsonlSink(tmp_path / "out.jsonl")
    sink.write(Item(FRAME, BOXES.with_track_ids(np.array([4, 9])), "", 30.0, 1.0, {}, zones, lines), None)
    sink.write(item(), None)  # untracked, no zones or lines: those keys are absent
    sink.close()
    first, second = (json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines())
    assert first == {"frame": 7, "time": 0.25, "image": "scene.png", "zones": zones, "lines": lines,
                     "detections": [{"xyxy": [1.0, 2.0, 11.0, 12.0], "score": 0.9, "class_id": 0,
                                     "class_name": "circle", "track_id": 4},
                                    {"xyxy": [20.0, 5.0, 30.0, 25.0], "score": 0.4, "class_id": 1,
                                     "class_name": "square", "track_id": 9}]}
    assert set(second) == {"frame", "time", "image", "detections"} and "track_id" not in second["detections"][0]


def test_view_stats_lists_labels_zones_and_line_totals_with_arrows():
    stats = view_stats(item(zones={"left": 2}, lines={"door": {"top_to_bottom": 5, "bottom_to_top": 1}}))
    assert stats == {"fps": 30.0, "latency_ms": 3.46, "frame": 7, "zones": {"left": 2},
                     "lines": {"door": {"top_to_bottom": 5, "bottom_to_top": 1}},
                     "counts": {"circle": 1, "square": 1, "zone left": 2, "line door ↓": 5, "line door ↑": 1}}
    assert list(stats["counts"]) == ["circle", "square", "zone left", "line door ↓", "line door ↑"]


def test_view_stats_carries_the_kiosk_verdict_only_when_there_is_one():
    assert "verdict" not in view_stats(item())
    shown = view_stats(item(verdict="Welcome, Ada", verdict_kind="welcome"))
    assert (shown["verdict"], shown["verdict_kind"]) == ("Welcome, Ada", "welcome")
