"""Zone counting: how many detections have their box center inside each named rectangle of the frame."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.apps.stream.specs import SOURCE_NAME
from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class Zone:
    """A named rectangle in frame pixels: xyxy (x1, y1, x2, y2), x1 < x2 and y1 < y2. source: the one source it
    belongs to in a run with several ("" for every source)."""

    name: str
    xyxy: tuple[float, float, float, float]
    source: str = ""


@dataclass(frozen=True)
class Named:
    """--zone / --line text, parsed: the source it is for ("" for all), its name and four finite numbers."""

    source: str
    name: str
    xyxy: tuple[float, float, float, float]


def parse_named(text: str, option: str, index: int) -> Named:
    """--zone / --line text: "[SOURCE:][NAME=]x1,y1,x2,y2" in frame pixels. Unnamed ones are zone1, line2, ...
    after the option and their position; without SOURCE it applies to every source."""
    source, colon, rest = text.partition(":")
    if not colon or not SOURCE_NAME.fullmatch(source.strip()):
        source, rest = "", text
    name, sep, coords = rest.rpartition("=")
    name = name.strip() if sep else f"{option.lstrip('-')}{index + 1}"
    try:
        x1, y1, x2, y2 = (float(v) for v in coords.split(","))
    except ValueError:
        raise UserError(f"{option} takes x1,y1,x2,y2 or [SOURCE:][NAME=]x1,y1,x2,y2 in frame pixels, but got "
                        f"{text!r}") from None
    if not name:
        raise UserError(f"{option} needs a name before '=', but got {text!r}")
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise UserError(f"{option} coordinates must be finite pixels, but got {text!r}")
    return Named(source.strip(), name, (x1, y1, x2, y2))


def parse_zone(text: str, index: int) -> Zone:
    """--zone text (see parse_named): a rectangle with x1 < x2 and y1 < y2."""
    named = parse_named(text, "--zone", index)
    x1, y1, x2, y2 = named.xyxy
    if not (x1 < x2 and y1 < y2):
        raise UserError(f"--zone needs x1 < x2 and y1 < y2, but got {text!r}")
    return Zone(named.name, named.xyxy, named.source)


def inside(zone: Zone, centers: np.ndarray) -> np.ndarray:
    """centers: (N, 2) pixels. Returns (N,) bool: inside the zone, edges included."""
    x1, y1, x2, y2 = zone.xyxy
    return (centers[:, 0] >= x1) & (centers[:, 0] <= x2) & (centers[:, 1] >= y1) & (centers[:, 1] <= y2)


def count_in_zones(det: Detections, zones: Sequence[Zone]) -> dict[str, int]:
    """Per zone, the detections whose box center lies inside it (edges included)."""
    centers = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2  # (N, 2)
    return {zone.name: int(np.count_nonzero(inside(zone, centers))) for zone in zones}


def track_centers(det: Detections, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """det by descending score, ids: (N,) its track ids. Returns each track's best detection (K,) int indices into
    det and their box centers (K, 2): a track with two boxes counts once."""
    first = np.unique(ids, return_index=True)[1]
    return first, (det.xyxy[first, :2] + det.xyxy[first, 2:]) / 2


@dataclass(frozen=True)
class ZoneChange:
    """A tracked object entering or leaving a zone: kind "zone_enter" or "zone_leave", its track and class, its
    last box (xyxy, pixels); lost: it left by vanishing inside (its track ended) rather than moving out."""

    kind: str
    zone: str
    track_id: int
    label: str
    box: tuple[float, float, float, float]
    lost: bool = False


class ZoneWatch:
    """Which tracked objects are inside each zone, frame after frame: an object enters when its center is first
    seen inside, leaves when seen outside, or when its track ends (unseen for more than forget frames, the
    tracker's max_age) while inside. A detector missing an object for a few frames is not a leave."""

    def __init__(self, zones: Sequence[Zone], forget: int) -> None:
        self.zones = list(zones)
        self.forget = forget
        self._inside: list[dict[int, tuple[str, tuple]]] = [{} for _ in self.zones]  # id -> (label, last box)
        self._seen: dict[int, int] = {}  # id -> frame number last seen
        self._frame = 0

    def update(self, det: Detections, ids: np.ndarray, classes: np.ndarray) -> list[ZoneChange]:
        """One frame: det by descending score, ids (N,) their track ids, classes (N,) each track's class id."""
        self._frame += 1
        first, centers = track_centers(det, ids)
        self._seen.update((int(i), self._frame) for i in ids)
        changes: list[ZoneChange] = []
        for zone, members in zip(self.zones, self._inside, strict=True):
            now = {int(ids[first[k]]): (det.class_name(int(classes[first[k]])),
                                        tuple(round(float(v), 2) for v in det.xyxy[first[k]]))
                   for k in np.flatnonzero(inside(zone, centers))}
            seen_out = [t for t in members if t not in now and self._seen.get(t) == self._frame]
            lost = [t for t in members if t not in now and self._frame - self._seen.get(t, 0) > self.forget]
            for t in seen_out + lost:
                label, box = members.pop(t)
                changes.append(ZoneChange("zone_leave", zone.name, t, label, box, lost=t in lost))
            for t, (label, box) in now.items():
                if t not in members:
                    changes.append(ZoneChange("zone_enter", zone.name, t, label, box))
                members[t] = (label, box)
        for t in [t for t, f in self._seen.items() if self._frame - f > self.forget]:
            del self._seen[t]
        return changes
