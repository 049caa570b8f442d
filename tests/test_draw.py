"""The overlay: labels inside the image and never on top of one another where there is room (checked pairwise by
brute force), the status line at the top-left corner, and counting lines labeled in ASCII."""

import numpy as np
import pytest

from edgepipe.apps.detect.app import _line_text
from edgepipe.apps.stream.draw import Mark, class_color, draw_detections, place_labels
from edgepipe.postprocess.detections import Detections


def overlapping(rects) -> list[tuple[int, int]]:
    """Index pairs of rectangles (x1, y1, x2, y2, exclusive ends) that share a pixel, by brute force."""
    out = []
    for i, a in enumerate(rects):
        for j, b in enumerate(rects[:i]):
            xs = set(range(a[0], a[2])) & set(range(b[0], b[2]))
            ys = set(range(a[1], a[3])) & set(range(b[1], b[3]))
            if xs and ys:
                out.append((j, i))
    return out


@pytest.mark.parametrize("seed", range(20))
def test_labels_stay_inside_and_apart(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 25))
    sizes = [(int(rng.integers(20, 120)), int(rng.integers(10, 24))) for _ in range(n)]
    # anchors clustered near the corners and edges, where labels collide or would leave the image
    anchors = [((int(rng.choice([0, 5, 300, 630])), int(rng.choice([0, 3, 240, 475]))), bool(rng.integers(2)))
               for _ in range(n)]
    rects = place_labels(sizes, anchors, (480, 640))
    assert all(x1 >= 0 and x2 <= 640 and y1 >= 0 and y2 <= 480 for x1, y1, x2, y2 in rects)
    assert [(x2 - x1, y2 - y1) for x1, y1, x2, y2 in rects] == sizes
    assert overlapping(rects) == []  # 25 labels of at most 24 px always find room in 480 px


def test_a_label_goes_above_its_box_unless_there_is_no_room():
    (above, at_top) = place_labels([(50, 20), (50, 20)], [((100, 200), False), ((400, 5), False)], (480, 640))
    assert above == (100, 180, 150, 200) and at_top == (400, 5, 450, 25)


def test_the_status_line_keeps_the_corner_and_a_box_label_moves_away():
    image = np.full((240, 320, 3), 128, np.uint8)
    det = Detections(np.array([[0, 0, 50, 50]]), np.array([0.9]), np.array([0]), ("circle",))
    out = draw_detections(image, det, status="30.0 FPS")
    assert (out[3:12, 3:40] < 100).mean() > 0.5  # the dark status box holds the corner
    filled = (np.abs(out[:, 10:30].astype(int) - class_color(0)).sum(axis=2) < 10).mean(axis=1)  # per row
    rows = np.flatnonzero(filled > 0.5)  # the rows of the circle's label box (its color, between the letters)
    assert rows.size and rows.min() >= 12  # below the status line, not on it


def test_line_labels_read_in_ascii():
    assert _line_text("middle", {"left_to_right": 3, "right_to_left": 2}) == "middle: 3 -> 2 <-"
    assert _line_text("gate", {"top_to_bottom": 0, "bottom_to_top": 1}) == "gate: 0 v 1 ^"


def test_marks_are_drawn_with_their_labels():
    image = np.zeros((100, 200, 3), np.uint8)
    out = draw_detections(image, Detections.empty(), marks=[Mark((100, 0, 100, 99), "door: 1 ->")])
    assert out[50, 99:102].any() and out[2:10, 100:140].any()
