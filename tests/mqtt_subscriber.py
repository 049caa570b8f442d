"""A test subscriber: a paho-mqtt client on the throwaway broker that takes everything under a topic filter at QoS 1
(subscribing again after the broker comes back) and keeps the messages in arrival order."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

DEADLINE_S = 30.0


@dataclass(frozen=True)
class Message:
    topic: str
    text: str
    retain: bool

    @property
    def json(self) -> Any:
        return json.loads(self.text)


class Subscriber:
    """Everything published under topic (a filter such as edgepipe/#) from the moment start() returns."""

    def __init__(self, port: int, topic: str) -> None:
        self.topic = topic
        self.messages: list[Message] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        self._client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self._client.on_subscribe = lambda *_: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 2)
        self._port = port

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Message(msg.topic, msg.payload.decode("utf-8"), bool(msg.retain)))

    def start(self) -> Subscriber:
        self._client.connect("127.0.0.1", self._port, keepalive=5)
        self._client.loop_start()
        assert self._subscribed.wait(DEADLINE_S), "the subscription was not acknowledged"
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def on(self, topic: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, text: str | None = None, count: int = 1) -> list[Message]:
        """The messages on topic (with payload text, when given) once there are count of them."""
        end = time.monotonic() + DEADLINE_S
        while True:
            found = [m for m in self.on(topic) if text is None or m.text == text]
            if len(found) >= count:
                return found
            if time.monotonic() > end:
                raise AssertionError(f"{count} message(s) {text!r} on {topic} not within {DEADLINE_S} s: "
                                     f"{[m.topic for m in self.messages][-10:]}")
            time.sleep(0.01)
