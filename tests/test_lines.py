"""Line-crossing counting against brute-force geometry: sides by solving for the line, crossings by solving for
the intersection of two segments."""

from __future__ import annotations

import numpy as np
import pytest

from edgepipe.apps.detect.lines import Line, LineCounter, parse_line
from edgepipe.postprocess.detections import Detections

NAMES = ("a", "b")


def reference_side(line: Line, p: np.ndarray) -> int:
    """+1 right of a vertical-ish line (larger x at the same y) or below a horizontal-ish one, -1 the other side."""
    x1, y1, x2, y2 = line.xyxy
    if abs(x2 - x1) <= abs(y2 - y1):
        return int(np.sign(p[0] - (x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1))))
    return int(np.sign(p[1] - (y1 + (p[0] - x1) * (y2 - y1) / (x2 - x1))))


def reference_crosses(line: Line, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether segment a-b meets the line's segment: solve a + t (b - a) = p1 + u (p2 - p1) for t, u in [0, 1]."""
    p1, p2 = np.array(line.xyxy[:2]), np.array(line.xyxy[2:])
    matrix = np.column_stack([b - a, p1 - p2])
    if abs(np.linalg.det(matrix)) < 1e-9:
        return False
    t, u = np.linalg.solve(matrix, p1 - a)
    return bool(0 <= t <= 1 and 0 <= u <= 1)


def random_line(rng: np.random.Generator) -> Line:
    x1, y1, x2, y2 = rng.uniform(0, 640, 4)
    return Line("l", (float(x1), float(y1), float(x2), float(y2)))


@pytest.mark.parametrize("seed", range(20))
def test_sides_against_the_line_equation(seed):
    rng = np.random.default_rng(seed)
    line = random_line(rng)
    points = rng.uniform(-100, 740, (200, 2))
    assert line.sides(points).tolist() == [reference_side(line, p) for p in points]


@pytest.mark.parametrize(("xyxy", "directions"), [
    ((320, 0, 320, 480), ("left_to_right", "right_to_left")),
    ((320, 480, 320, 0), ("left_to_right", "right_to_left")),
    ((0, 240, 640, 240), ("top_to_bottom", "bottom_to_top")),
    ((640, 100, 0, 300), ("top_to_bottom", "bottom_to_top")),
    ((0, 0, 100, 100), ("left_to_right", "right_to_left")),  # 45 degrees counts as vertical
])
def test_directions_are_named_by_the_screen(xyxy, directions):
    line = Line("l", xyxy)
    assert line.directions == directions
    x1, y1, x2, y2 = xyxy
    mid = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
    step = np.array([30.0, 0.0]) if directions[0] == "left_to_right" else np.array([0.0, 30.0])
    assert line.sides(np.array([mid - step, mid + step])).tolist() == [-1, 1]


@pytest.mark.parametrize("seed", range(30))
def test_crossings_of_random_walks(seed):
    """Eight objects wander near the line (steps up to 60 px, a quarter of the frames unseen); the counter's totals
    equal a count made with the reference geometry, remembering each object's last sighting off the line."""
    rng = np.random.default_rng(seed)
    line = random_line(rng)
    counter = LineCounter([line], forget=1000)
    middle = (np.array(line.xyxy[:2]) + np.array(line.xyxy[2:])) / 2
    positions = middle + rng.uniform(-100, 100, (8, 2))  # near the line: crossings are frequent
    last: dict[int, tuple[int, np.ndarray]] = {}
    want = dict.fromkeys(line.directions, 0)
    for _ in range(60):
        positions += rng.uniform(-60, 60, positions.shape)
        seen = np.flatnonzero(rng.random(8) > 0.25)
        boxes = np.concatenate([positions[seen] - 5, positions[seen] + 5], axis=1).astype(np.float32)
        det = Detections(boxes, np.ones(len(seen), np.float32), seen % 2, NAMES)
        got = counter.update(det, seen.astype(np.int64), seen % 2)
        for k in seen.tolist():
            side = reference_side(line, positions[k].astype(np.float32).astype(np.float64))
            if side == 0:
                continue
            before = last.get(k)
            last[k] = (side, positions[k].copy())
            if before and before[0] != side and reference_crosses(line, before[1], positions[k]):
                want[line.directions[0] if side > 0 else line.directions[1]] += 1
        assert got == {"l": want}
    assert sum(want.values()) > 0


def test_a_second_box_of_the_same_track_is_not_counted_twice():
    line = Line("door", (100, 0, 100, 200))
    counter = LineCounter([line], forget=10)
    left = Detections(np.array([[60, 90, 80, 110]], np.float32), np.ones(1, np.float32), np.array([0]), NAMES)
    counter.update(left, np.array([7]), np.array([0]))
    # The best box has crossed; a weaker duplicate of the same track is still left of the line.
    both = Detections(np.array([[110, 90, 130, 110], [85, 90, 105, 110]], np.float32),
                      np.array([0.9, 0.4], np.float32), np.array([0, 1]), NAMES)
    assert counter.update(both, np.array([7, 7]), np.array([0, 0])) == {"door": {"left_to_right": 1,
                                                                                "right_to_left": 0}}
    assert counter.summary() == {"door": {"left_to_right": 1, "right_to_left": 0,
                                          "by_class": {"left_to_right": {"a": 1}}}}


def test_forgotten_tracks_are_not_counted():
    line = Line("door", (100, 0, 100, 200))
    counter = LineCounter([line], forget=3)
    at = lambda x: Detections(np.array([[x, 90, x + 20, 110]], np.float32), np.ones(1, np.float32),  # noqa: E731
                              np.array([0]), NAMES)
    counter.update(at(40), np.array([1]), np.array([0]))
    for _ in range(4):
        counter.update(Detections.empty(NAMES), np.zeros(0, np.int64), np.zeros(0, np.int64))
    assert counter.update(at(140), np.array([1]), np.array([0]))["door"]["left_to_right"] == 0
    counter.update(at(40), np.array([1]), np.array([0]))  # seen again: it crossed back, counted
    assert counter.totals()["door"] == {"left_to_right": 0, "right_to_left": 1}


@pytest.mark.parametrize(("text", "line"), [
    ("320,0,320,480", Line("line1", (320.0, 0.0, 320.0, 480.0))),
    ("door=10.5,20,30,40", Line("door", (10.5, 20.0, 30.0, 40.0))),
])
def test_parse_line(text, line):
    assert parse_line(text, 0) == line


@pytest.mark.parametrize("text", ["1,2,3", "a=1,2,x,4", "5,5,5,5", "=1,2,3,4"])
def test_parse_line_errors(text):
    with pytest.raises(ValueError, match="--line"):
        parse_line(text, 0)
