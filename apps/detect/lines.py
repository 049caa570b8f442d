"""Line-crossing counting: tracked objects whose box center crosses a named segment of the frame, per direction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from edgepipe.apps.detect.zones import parse_named, track_centers
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class Line:
    """A named segment in frame pixels from (x1, y1) to (x2, y2), of nonzero length.

    Crossings are named by the screen: "left_to_right" / "right_to_left" for a line closer to vertical than
    to horizontal (a 45-degree line counts as vertical), "top_to_bottom" / "bottom_to_top" otherwise.
    """

    name: str
    xyxy: tuple[float, float, float, float]
    source: str = ""  # the one source it belongs to in a run with several ("" for every source)

    @property
    def directions(self) -> tuple[str, str]:
        """(crossing onto the right or bottom side, crossing onto the left or top side)."""
        x1, y1, x2, y2 = self.xyxy
        if abs(x2 - x1) <= abs(y2 - y1):
            return "left_to_right", "right_to_left"
        return "top_to_bottom", "bottom_to_top"

    def sides(self, points: np.ndarray) -> np.ndarray:
        """points: (N, 2) pixels. Returns (N,) int8: +1 on the right (or bottom) side, -1 on the other, 0 on it."""
        x1, y1, x2, y2 = self.xyxy
        dx, dy = x2 - x1, y2 - y1
        cross = dx * (points[:, 1] - y1) - dy * (points[:, 0] - x1)
        # The side where x grows (vertical lines) or y grows (horizontal ones) is +1.
        toward = -dy if abs(dx) <= abs(dy) else dx
        return (np.sign(cross) * np.sign(toward)).astype(np.int8)

    def spans(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """start, end: (N, 2) movements that change side. Returns (N,) bool: whether each passes between the
        segment's two ends (not around them)."""
        x1, y1, x2, y2 = self.xyxy
        d = end - start  # (N, 2)
        o1 = d[:, 0] * (y1 - start[:, 1]) - d[:, 1] * (x1 - start[:, 0])
        o2 = d[:, 0] * (y2 - start[:, 1]) - d[:, 1] * (x2 - start[:, 0])
        return o1 * o2 <= 0


def parse_line(text: str, index: int) -> Line:
    """--line text (see zones.parse_named): a segment between two different points."""
    named = parse_named(text, "--line", index)
    x1, y1, x2, y2 = named.xyxy
    if (x1, y1) == (x2, y2):
        raise UserError(f"--line needs two different end points, but got {text!r}")
    return Line(named.name, named.xyxy, named.source)


@dataclass(frozen=True)
class Crossing:
    """One crossing: the line, the direction, the track and its class, and the track's box (xyxy, pixels) then."""

    line: str
    direction: str
    track_id: int
    label: str
    box: tuple[float, float, float, float]


@dataclass
class LineCounts:
    """One line's crossings so far: per direction, and per direction and class name."""

    directions: Counter[str] = field(default_factory=Counter)
    by_class: dict[str, Counter[str]] = field(default_factory=dict)


class LineCounter:
    """Counts crossings of tracked detections. Each track remembers the side of every line its center was last
    seen on (off the line); moving to the other side between two sightings, through the segment, is one crossing.
    An object that goes back and forth is counted each time. Tracks unseen for more than forget frames (the
    tracker's max_age: their ids never come back) are forgotten, so memory stays flat on an endless stream."""

    def __init__(self, lines: Sequence[Line], forget: int) -> None:
        self.lines = list(lines)
        self.forget = forget
        self.counts = {line.name: LineCounts() for line in self.lines}
        self._last: list[dict[int, tuple[int, np.ndarray]]] = [{} for _ in self.lines]  # id -> (side, center)
        self._seen: dict[int, int] = {}  # id -> frame number last seen
        self._frame = 0
        self.crossed: list[Crossing] = []  # the crossings of the last update

    def update(self, det: Detections, ids: np.ndarray, classes: np.ndarray) -> dict[str, dict[str, int]]:
        """det: one frame's detections by descending score; ids: (N,) their track ids (a track may have two boxes:
        its best one counts); classes: (N,) the class to count each under (the track's, IouTracker.classes).
        Returns each line's totals per direction; the frame's crossings are in crossed."""
        self._frame += 1
        self.crossed = []
        self._seen.update((int(i), self._frame) for i in ids)
        first, centers = track_centers(det, ids)  # one detection per track: its best (det is by score)
        ids, classes = ids[first], classes[first]
        for line, last in zip(self.lines, self._last, strict=True):
            sides = line.sides(centers)
            for i in np.flatnonzero(sides != 0):
                key = int(ids[i])
                before = last.get(key)
                last[key] = (int(sides[i]), centers[i])
                if before is None or before[0] == sides[i]:
                    continue
                if line.spans(before[1][None], centers[i][None])[0]:
                    box = tuple(round(float(v), 2) for v in det.xyxy[first[i]])
                    self._count(line, int(sides[i]), det.class_name(int(classes[i])), key, box)
        self._forget()
        return self.totals()

    def _forget(self) -> None:
        gone = [key for key, frame in self._seen.items() if self._frame - frame > self.forget]
        for key in gone:
            del self._seen[key]
            for last in self._last:
                last.pop(key, None)

    def totals(self) -> dict[str, dict[str, int]]:
        """Crossings so far per line and direction (both directions present, 0 when none)."""
        return {line.name: {d: self.counts[line.name].directions[d] for d in line.directions} for line in self.lines}

    def summary(self) -> dict[str, dict]:
        """totals, with "by_class": per direction, the crossings per class name."""
        return {name: {**ways, "by_class": {d: dict(c) for d, c in self.counts[name].by_class.items()}}
                for name, ways in self.totals().items()}

    def _count(self, line: Line, side: int, class_name: str, track_id: int, box: tuple) -> None:
        direction = line.directions[0] if side > 0 else line.directions[1]
        self.crossed.append(Crossing(line.name, direction, track_id, class_name, box))
        counts = self.counts[line.name]
        counts.directions[direction] += 1
        counts.by_class.setdefault(direction, Counter())[class_name] += 1
