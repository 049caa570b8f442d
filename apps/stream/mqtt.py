"""MqttPublisher: JSON messages to an MQTT broker (paho-mqtt 2) at QoS 1, an online/offline status topic with a last
will, reconnects with backoff, and a bounded queue while the broker is away (the oldest dropped, counted)."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edgepipe.apps.servers import Unreachable, redact
from edgepipe.apps.stream.web import to_jsonable
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.mqtt")

PORT = 1883
PREFIX = "edgepipe"
QUEUE = 10_000  # messages kept while the broker is away, by default
WINDOW = 50  # messages handed to the client and not yet acknowledged by the broker
KEEPALIVE_S = 15  # a broker that vanished without closing the connection is noticed within 1.5 of these
CONNECT_TIMEOUT_S = 5.0
DRAIN_S = 5.0  # close() waits this long for the queue to reach the broker (one that is away may come back)
RECONNECT_S = (1, 8)  # paho's reconnect waits, whole seconds: the first, doubling up to the last
QOS = 1
ONLINE, OFFLINE = "online", "offline"


@dataclass(frozen=True)
class MqttTarget:
    """Where messages go: mqtt://[USER[:PASSWORD]@]HOST[:PORT][/PREFIX], every topic under PREFIX."""

    host: str
    port: int = PORT
    prefix: str = PREFIX
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        """The target a --publish URL names; UserError (never showing the password) for anything else."""
        shown = redact(url)
        try:
            parts = urlsplit(url)
            port = parts.port or PORT
        except ValueError:
            raise UserError(f"--publish {shown}: the port must be a number in 1..65535") from None
        if parts.scheme != "mqtt" or not parts.hostname:
            raise UserError(f"--publish takes mqtt://HOST[:PORT][/PREFIX], but got {shown}")
        if "?" in url or "#" in url:
            raise UserError(f"--publish {shown}...: no ? or # in an MQTT URL (no query, no wildcard in the prefix; "
                            "percent-encode them in a password)")
        prefix = parts.path.strip("/") or PREFIX
        if any(c in prefix for c in "+#") or "" in prefix.split("/"):
            raise UserError(f"--publish {shown}: the topic prefix {prefix!r} must be levels without + or # or "
                            "empty levels, e.g. edgepipe/door1")
        user = unquote(parts.username) if parts.username else None
        return cls(parts.hostname, port, prefix, user, unquote(parts.password) if parts.password else None)

    def describe(self) -> str:
        """mqtt://[USER@]HOST:PORT/PREFIX: no password."""
        return f"mqtt://{f'{self.username}@' if self.username else ''}{self.host}:{self.port}/{self.prefix}"

    def topic(self, *levels: str) -> str:
        return "/".join((self.prefix, *levels))


@dataclass(frozen=True)
class PublishStats:
    """What a publisher did: messages the broker acknowledged, dropped from the full queue while it was away,
    left unsent at close (the broker was still away), and reconnects."""

    target: str
    published: int
    dropped: int
    unsent: int
    reconnects: int

    def lines(self) -> list[str]:
        out = [f"published {self.published} messages to {self.target}"]
        if self.dropped or self.unsent or self.reconnects:
            out[0] += (f": {self.dropped} dropped while the broker was away, {self.unsent} unsent at the end, "
                       f"{self.reconnects} reconnect(s)")
        return out


class MqttPublisher:
    """Publishes to one broker from any thread: publish() only queues, a sender thread hands messages to paho-mqtt
    (whose network thread reconnects with backoff) while at most WINDOW wait for the broker's acknowledgement.

    <prefix>/available holds "online" (retained) while the publisher runs; the broker publishes the last will
    "offline" when the connection dies, and close() publishes it on a clean stop. start() connects first: a
    broker that refuses (a wrong password) is a UserError, one that does not answer is Unreachable.
    """

    def __init__(self, target: MqttTarget, client_id: str = "", queue_size: int = QUEUE) -> None:
        if queue_size < 1:
            raise UserError(f"the publish queue must hold >= 1 message, but got {queue_size}")
        self.target, self.queue_size = target, queue_size
        self._queue: deque[tuple[str, str, bool, bool]] = deque()  # topic, payload, retain, whether JSON
        self._cond = threading.Condition()
        self._connected = self._closing = False
        self._inflight = self.published = self.dropped = self._unreported = self.reconnects = 0
        self._refused = ""
        self._first = threading.Event()
        client_id = client_id or f"edgepipe-{uuid.uuid4().hex[:12]}"
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        if log.isEnabledFor(logging.DEBUG):  # paho's own lines only with --verbose
            self._client.enable_logger(logging.getLogger("edgepipe.mqtt.paho"))
        self._client.connect_timeout = CONNECT_TIMEOUT_S
        if target.username:
            self._client.username_pw_set(target.username, target.password)
        self._client.will_set(target.topic("available"), OFFLINE, qos=QOS, retain=True)
        self._client.max_inflight_messages_set(WINDOW)
        self._client.reconnect_delay_set(*RECONNECT_S)
        self._client.on_connect, self._client.on_disconnect = self._on_connect, self._on_disconnect
        self._client.on_publish = self._on_publish
        self._sender = threading.Thread(target=self._send, name="mqtt-sender", daemon=True)

    def start(self) -> MqttPublisher:
        """Connect (and wait for the broker's answer), then start the network and sender threads."""
        where = self.target.describe()
        try:
            self._client.connect(self.target.host, self.target.port, keepalive=KEEPALIVE_S)
        except socket.gaierror as exc:
            raise UserError(f"MQTT broker {where}: unknown host ({exc.strerror}): check the host name in the URL"
                            ) from None
        except OSError as exc:
            raise Unreachable(f"MQTT broker {where} is unreachable ({exc.strerror or exc}): is it running and "
                              "listening there?") from None
        self._client.loop_start()
        if not self._first.wait(CONNECT_TIMEOUT_S + 1) or self._refused:
            self._client.loop_stop()
            self._client.disconnect()
            if self._refused:
                raise UserError(f"MQTT broker {where} refused the connection ({self._refused}): check the user "
                                "and password in the URL")
            raise Unreachable(f"MQTT broker {where} did not answer within {CONNECT_TIMEOUT_S:g} s")
        self._sender.start()
        log.info("publishing to %s", where)
        return self

    def publish(self, topic: str, payload: dict[str, Any] | str | int, retain: bool = False) -> None:
        """Queue one message for <prefix>/topic (a dict is sent as JSON: numpy values as numbers, NaN and inf as
        null). When the queue is full the oldest message is dropped; the next JSON message sent says how many were
        ("dropped": N)."""
        is_json = isinstance(payload, dict)
        text = json.dumps(to_jsonable(payload), allow_nan=False) if is_json else str(payload)  # fails here if not
        with self._cond:
            self._queue.append((self.target.topic(topic), text, retain, is_json))
            if len(self._queue) > self.queue_size:
                self._queue.popleft()
                self.dropped += 1
                self._unreported += 1
            self._cond.notify()

    def stats(self) -> PublishStats:
        with self._cond:
            unsent = len(self._queue) + self._inflight if self._closing else 0
            return PublishStats(self.target.describe(), self.published, self.dropped, unsent, self.reconnects)

    def close(self, drain_s: float = DRAIN_S) -> PublishStats:
        """Send what is queued (waiting up to drain_s for the broker), say "offline", disconnect."""
        end = time.monotonic() + drain_s
        with self._cond:
            while (self._queue or self._inflight) and time.monotonic() < end:
                self._cond.wait(0.05)
            self._closing = True
            self._cond.notify_all()
        if self._sender.is_alive():
            self._sender.join()
        if self._connected:
            with contextlib.suppress(RuntimeError, ValueError):  # gone just now: the last will says it
                self._status(OFFLINE).wait_for_publish(DRAIN_S)
        self._client.disconnect()
        self._client.loop_stop()
        stats = self.stats()
        if stats.unsent or stats.dropped:
            log.warning("MQTT: %d messages not delivered to %s (%d dropped while it was away, %d unsent at the end)",
                        stats.dropped + stats.unsent, stats.target, stats.dropped, stats.unsent)
        return stats

    def _send(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not (self._connected and self._queue and self._inflight < WINDOW):
                    self._cond.wait()
                if self._closing:
                    return
                topic, text, retain, is_json = self._queue.popleft()
                if is_json and self._unreported:
                    text, self._unreported = json.dumps({**json.loads(text), "dropped": self._unreported}), 0
                self._inflight += 1
            self._client.publish(topic, text, qos=QOS, retain=retain)

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._first.set()
            log.warning("MQTT broker %s refused the connection: %s", self.target.describe(), reason)
            return
        self._status(ONLINE)
        with self._cond:
            if self._first.is_set():
                self.reconnects += 1
                log.warning("MQTT broker %s is back: sending %d queued messages (%d dropped while it was away)",
                            self.target.describe(), len(self._queue), self.dropped)
            self._connected = True
            self._cond.notify_all()
        self._first.set()

    def _status(self, text: str) -> paho.MQTTMessageInfo:
        """Publish <prefix>/available, retained (counted like any message)."""
        with self._cond:
            self._inflight += 1
        return self._client.publish(self.target.topic("available"), text, qos=QOS, retain=True)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            was, self._connected = self._connected, False
            self._cond.notify_all()
        if was and not self._closing:
            log.warning("MQTT broker %s went away (%s): keeping up to %d messages, reconnecting",
                        self.target.describe(), reason, self.queue_size)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._cond:
            self._inflight -= 1
            self.published += 1
            self._cond.notify_all()
