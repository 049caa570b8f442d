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


def count_in_zones(det: Detections, zones: Sequence[Zone]) -> dict[str, int]:
    """Per zone, the detections whose box center lies inside it (edges included)."""
    centers = (det.xyxy[:, :2] + det.xyxy[:, 2:]) / 2  # (N, 2)
    out = {}
    for zone in zones:
        x1, y1, x2, y2 = zone.xyxy
        inside = (centers[:, 0] >= x1) & (centers[:, 0] <= x2) & (centers[:, 1] >= y1) & (centers[:, 1] <= y2)
        out[zone.name] = int(np.count_nonzero(inside))
    return out
