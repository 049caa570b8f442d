"""Events over MQTT (--publish): what a camera app's frames tell, as JSON messages under one topic prefix in
Frigate's shape: <prefix>/events (line crossings, zone enter/leave, kiosk decisions), <prefix>/<camera>/counts and
<prefix>/<camera>/<label> (retained, once per interval), <prefix>/<camera>/detections (every frame, when asked).
docs/events.md has the topics and the message schema."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edgepipe.apps.stream.mqtt import QUEUE, MqttPublisher, MqttTarget, PublishStats
from edgepipe.apps.stream.sinks import Item
from edgepipe.postprocess.errors import UserError

INTERVAL_S = 1.0  # seconds of source time between count messages, by default
NOT_A_LEVEL = re.compile(r"[^A-Za-z0-9_.-]")  # what a camera or label name loses in a topic level


def topic_level(name: str) -> str:
    """name as one topic level: characters other than letters, digits and _ . - become _ ("" stays "")."""
    return NOT_A_LEVEL.sub("_", name)


def camera_name(source: str) -> str:
    """The camera's name from its source, for the messages and the topics: camera0 for camera 0, the file's stem
    for a video or folder, the host for a stream URL."""
    if source.isdigit():
        return f"camera{source}"
    if "://" in source:
        return topic_level(urlsplit(source).hostname or "stream")
    return topic_level(Path(source).stem or Path(source).name) or "camera"


@dataclass(frozen=True)
class PublishOptions:
    """--publish: url, mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX]. camera: the name in every message and in the
    count topics ("": from the source, see camera_name). interval: seconds of source time between count messages.
    frames: every frame's detections too. queue: messages kept while the broker is away (the oldest dropped)."""

    url: str
    camera: str = ""
    interval: float = INTERVAL_S
    frames: bool = False
    queue: int = QUEUE

    def __post_init__(self) -> None:
        MqttTarget.parse(self.url)  # a bad URL fails with the options, before any work
        if not self.interval > 0 or self.queue < 1:
            raise UserError(f"--publish-interval must be > 0 s and --publish-queue >= 1, but got {self.interval} "
                            f"and {self.queue}")


@dataclass
class _Camera:
    """One camera's part of the messages: its name, and its counts since the last count message."""

    name: str
    next: float = -np.inf  # source time of the next count message
    peak: Counter[str] = field(default_factory=Counter)
    shown: dict[str, int] = field(default_factory=dict)  # label -> the count its topic holds
    last: Item | None = None


class EventSink:
    """A sink that publishes each Item's events, its detections (frames), and the counts once per interval of
    source time (and at the end), for every source of the run over one connection. Connects when made: a broker
    that refuses or does not answer fails the run before the first frame. close() sends what is queued, says
    "offline" and keeps the PublishStats in stats.

    sources: each source's name in the run ("" for the only, unnamed one) -> its text. A source's camera is its
    name; the only, unnamed one's is options.camera, else camera_name(its text)."""

    overlay = False

    def __init__(self, options: PublishOptions, sources: dict[str, str]) -> None:
        self.options = options
        self.cameras = {name: _Camera(topic_level(name) or topic_level(options.camera) or camera_name(text))
                        for name, text in sources.items()}
        self.stats: PublishStats | None = None
        first = next(iter(self.cameras.values())).name
        self.publisher = MqttPublisher(MqttTarget.parse(options.url), f"edgepipe-{first}-{os.getpid()}",
                                       options.queue).start()

    def write(self, item: Item, annotated: np.ndarray | None) -> None:
        camera = self.cameras[item.source]
        head = self._head(camera, item)
        for event in item.events:
            self.publisher.publish("events", {"type": event.type, **head, **event.fields})
        if self.options.frames:
            self.publisher.publish(f"{camera.name}/detections", {**head, "detections": item.detections.to_dicts()})
        camera.peak |= Counter(item.counts)
        camera.last = item
        if item.frame.time >= camera.next:
            self._counts(camera, item)

    def close(self) -> None:
        for camera in self.cameras.values():
            if camera.last is not None:
                self._counts(camera, camera.last)
        self.stats = self.publisher.close()

    @staticmethod
    def _head(camera: _Camera, item: Item) -> dict[str, Any]:
        """What every message starts with: the camera, the frame, its source time and the Unix time now."""
        return {"camera": camera.name, "frame": item.frame.index, "time": round(item.frame.time, 4),
                "timestamp": round(time.time(), 3)}

    def _counts(self, camera: _Camera, item: Item) -> None:
        """<camera>/counts (JSON) and <camera>/<label> for each label whose count changed, all retained."""
        counts = {label: int(n) for label, n in item.counts.items()}
        message = {"type": "counts", **self._head(camera, item), "interval_s": self.options.interval,
                   "objects": counts, "peak": dict(camera.peak)}
        if item.zones:
            message["zones"] = item.zones
        if item.lines:
            message["lines"] = item.lines
        self.publisher.publish(f"{camera.name}/counts", message, retain=True)
        for label in sorted(set(counts) | set(camera.shown)):
            n = counts.get(label, 0)
            if camera.shown.get(label) != n:
                self.publisher.publish(f"{camera.name}/{topic_level(label)}", n, retain=True)
                camera.shown[label] = n
        camera.peak = Counter()
        camera.next = item.frame.time + self.options.interval
