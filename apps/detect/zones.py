"""Zone counting: how many detections have their box center inside each named rectangle of the frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepipe.postprocess.detections import Detections
from edgepipe.postprocess.errors import UserError


@dataclass(frozen=True)
class Zone:
    """A named rectangle in frame pixels: xyxy (x1, y1, x2, y2), x1 < x2 and y1 < y2."""

    name: str
    xyxy: tuple[float, float, float, float]


def parse_named(text: str, option: str, index: int) -> tuple[str, tuple[float, float, float, float]]:
    """--zone / --line text: "x1,y1,x2,y2" or "NAME=x1,y1,x2,y2" in frame pixels. Returns the name (unnamed ones
    are zone1, line2, ... after the option and their position) and the four numbers."""
    name, sep, coords = text.rpartition("=")
    name = name.strip() if sep else f"{option.lstrip('-')}{index + 1}"
    try:
        x1, y1, x2, y2 = (float(v) for v in coords.split(","))
    except ValueError:
        raise UserError(f"{option} takes x1,y1,x2,y2 or NAME=x1,y1,x2,y2 in frame pixels, but got {text!r}") from None
    if not name:
        raise UserError(f"{option} needs a name before '=', but got {text!r}")
    return name, (x1, y1, x2, y2)


def parse_zone(text: str, index: int) -> Zone:
    """--zone text (see parse_named): a rectangle with x1 < x2 and y1 < y2."""
    name, (x1, y1, x2, y2) = parse_named(text, "--zone", index)
    if not (x1 < x2 and y1 < y2):
        raise UserError(f"--zone needs x1 < x2 and y1 < y2, but got {text!r}")
    return Zone(name, (x1, y1, x2, y2))


def count_in_zones(det: Detections, zones: Sequence[Zone]) -> dict[str, int]:
    """Per zone, the detections whose box center lies inside it (edges included)."""
    centers = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2  # (N, 2)
    out = {}
    for zone in zones:
        x1, y1, x2, y2 = zone.xyxy
        inside = (centers[:, 0] >= x1) & (centers[:, 0] <= x2) & (centers[:, 1] >= y1) & (centers[:, 1] <= y2)
        out[zone.name] = int(np.count_nonzero(inside))
    return out
