"""The live browser view: addresses, endpoints, the MJPEG stream read byte by byte, the page in headless Chromium."""

from __future__ import annotations

import json
import logging
import re
import socket
import struct
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edgepipe.apps.stream.web import LiveView, parse_address
from tests.browser import dump_dom, require_chromium, screenshot

H, W = 480, 640


@pytest.fixture
def view():
    with LiveView("127.0.0.1", 0, title="test view") as v:
        yield v


def get(v: LiveView, path: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of GET path, error statuses included."""
    try:
        with urllib.request.urlopen(v.url.rstrip("/") + path, timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def marked_frame(k: int, noise: bool = False) -> np.ndarray:
    """A (H, W, 3) uint8 BGR frame whose top-left 64x64 patch carries the number k (0..120) as its grey level.

    noise: the rest is random noise (about 200 kB as a JPEG), else flat grey."""
    if noise:
        frame = np.random.default_rng(k).integers(0, 256, (H, W, 3), dtype=np.uint8)
    else:
        frame = np.full((H, W, 3), 128, np.uint8)
    frame[:64, :64] = 10 + 2 * k
    return frame


def mark_of(jpeg: bytes) -> int:
    """The number k that marked_frame(k) put in the frame this JPEG shows."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (H, W, 3)
    return round((float(image[16:48, 16:48].mean()) - 10) / 2)


def open_stream(v: LiveView, rcvbuf: int = 0) -> tuple[socket.socket, object]:
    """A raw connection to /stream.mjpg, past its HTTP headers: (socket, its binary reader); rcvbuf > 0 sets the
    socket's receive buffer (bytes) before it connects."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", v.port))
    sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: test\r\n\r\n")
    reader = sock.makefile("rb")
    assert reader.readline().split()[1] == b"200"
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    assert headers["content-type"] == "multipart/x-mixed-replace; boundary=frame"
    return sock, reader


def read_part(reader) -> bytes | None:
    """The next JPEG of a multipart stream (boundary "frame"), None when the server ended the stream."""
    line = reader.readline()
    if not line:
        return None
    assert line == b"--frame\r\n"
    headers = {}
    while (line := reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    assert headers["content-type"] == "image/jpeg"
    jpeg = reader.read(int(headers["content-length"]))
    assert reader.read(2) == b"\r\n"
    return jpeg


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    (":8080", ("127.0.0.1", 8080)),  # no host: loopback only
    ("0.0.0.0:0", ("0.0.0.0", 0)),  # port 0: any free port
    ("localhost:65535", ("localhost", 65535)),  # the highest port
    (" 192.168.1.5:80 ", ("192.168.1.5", 80)),  # surrounding spaces from a config file
])
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("8080", r"expected HOST:PORT \(e\.g\. 127\.0\.0\.1:8080 or :8080\), got '8080'"),  # port alone
    ("127.0.0.1:", "expected HOST:PORT"),  # no port
    ("host:http", "expected HOST:PORT"),  # a service name, not a number
    ("127.0.0.1:-1", "expected HOST:PORT"),  # negative
    ("a:b:80", "expected HOST:PORT"),  # two colons
    ("my host:80", "expected HOST:PORT"),  # space inside the host
    ("127.0.0.1:65536", r"port must be in 0\.\.65535 \(0 = any free port\), got 65536"),  # out of range
])
def test_parse_address_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_address(text)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"port": 70000}, r"port must be in 0\.\.65535"),
    ({"port": 0, "jpeg_quality": 0}, r"jpeg_quality must be in 1\.\.100, got 0"),
])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LiveView(**kwargs)


def test_port_in_use(view):
    with pytest.raises(ValueError, match=rf"cannot listen on 127\.0\.0\.1:{view.port}: address already in use: "
                                         r"choose another --serve port"):
        LiveView("127.0.0.1", view.port).start()
    assert get(view, "/stats.json")[0] == 200  # the first view still serves


def test_port_zero_and_network_warning(caplog):
    with caplog.at_level(logging.WARNING, "edgepipe.web"), LiveView("127.0.0.1", 0) as local:
        assert local.port > 0 and local.url == f"http://127.0.0.1:{local.port}/"
    assert not caplog.records  # loopback: no warning
    with caplog.at_level(logging.WARNING, "edgepipe.web"), LiveView("0.0.0.0", 0) as everywhere:
        assert everywhere.url == f"http://127.0.0.1:{everywhere.port}/"  # browsers refuse 0.0.0.0
        assert get(everywhere, "/stats.json")[0] == 200
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "reachable from the network" in caplog.records[0].getMessage()


def test_page_has_the_elements_and_no_external_resources():
    with LiveView("127.0.0.1", 0, title="cam <1> & co") as v:
        status, content_type, body = get(v, "/")
    page = body.decode()
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert '<img id="stream" src="stream.mjpg"' in page
    for element_id in ("fps", "latency", "counts", "verdict"):
        assert f'id="{element_id}"' in page
    assert "<h1>cam &lt;1&gt; &amp; co</h1>" in page  # the title is escaped
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing loaded from elsewhere
    assert "fetch(\"stats.json\"" in page and "setTimeout(poll, 500)" in page


def test_frame_jpg(view):
    status, content_type, body = get(view, "/frame.jpg")
    assert (status, content_type, body) == (503, "text/plain", b"no frame published yet\n")
    # A smooth color image with distinct channels: a swap of B and R would show.
    y, x = np.mgrid[0:H, 0:W]
    frame = np.stack([x * 255 // W, y * 255 // H, np.full_like(x, 60)], axis=-1).astype(np.uint8)
    cv2.circle(frame, (320, 240), 100, (0, 0, 255), -1)
    view.publish(frame, {})
    status, content_type, body = get(view, "/frame.jpg")
    assert (status, content_type) == (200, "image/jpeg")
    shown = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape == frame.shape
    assert np.abs(shown.astype(int) - frame).mean() < 2.0
    assert np.abs(shown.astype(int) - frame[..., ::-1]).mean() > 20.0  # the check tells the channel order apart


def test_stats_json_round_trip(view):
    assert get(view, "/stats.json") == (200, "application/json", b"{}")
    stats = {"fps": np.float32(29.5), "latency_ms": np.float64(3.25), "counts": {"circle": np.int64(2), "square": 0},
             "verdict": "Welcome, Ada", "verdict_kind": "welcome", "box": np.array([1, 2]), "lost": float("nan"),
             "ok": np.bool_(True)}
    view.publish(marked_frame(0), stats)
    stats["fps"] = 1.0  # changes after publish do not leak into what was published
    status, content_type, body = get(view, "/stats.json")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body) == {"fps": 29.5, "latency_ms": 3.25, "counts": {"circle": 2, "square": 0},
                                "verdict": "Welcome, Ada", "verdict_kind": "welcome", "box": [1, 2], "lost": None,
                                "ok": True}


def test_unknown_path_is_404(view):
    status, _, body = get(view, "/nothing/here")
    assert status == 404 and b"not found" in body


@pytest.mark.parametrize(("frame", "stats", "message"), [
    (np.zeros((H, W), np.uint8), {}, r"\(H, W, 3\) uint8 BGR array, got shape \(480, 640\) uint8"),  # grey
    (np.zeros((H, W, 4), np.uint8), {}, r"got shape \(480, 640, 4\) uint8"),  # BGRA
    (np.zeros((H, W, 3), np.float32), {}, r"got shape \(480, 640, 3\) float32"),  # not uint8
    ([[0, 0, 0]], {}, "got list"),  # not an array
    (np.zeros((H, W, 3), np.uint8), [("fps", 1)], "stats must be a dict, got list"),
    (np.zeros((H, W, 3), np.uint8), {"when": object()}, "stats must be JSON-serialisable"),
])
def test_publish_rejects_bad_input(view, frame, stats, message):
    with pytest.raises(ValueError, match=message):
        view.publish(frame, stats)


def test_stream_delivers_frames_in_order(view):
    view.publish(marked_frame(0), {})
    sock, reader = open_stream(view)
    with sock, reader:
        seen = [mark_of(read_part(reader))]  # the newest frame comes at once
        for k in range(1, 6):
            view.publish(marked_frame(k), {})
            seen.append(mark_of(read_part(reader)))
    assert seen == [0, 1, 2, 3, 4, 5]


def test_slow_client_skips_frames_and_publish_never_waits(view):
    """A client that reads nothing while 120 large frames are published: publish goes on, the client gets the newest."""
    view.publish(marked_frame(0, noise=True), {})
    sock, reader = open_stream(view, rcvbuf=65536)
    with sock, reader:
        assert mark_of(read_part(reader)) == 0
        start = time.monotonic()
        for k in range(1, 121):
            view.publish(marked_frame(k, noise=True), {})
        publish_s = time.monotonic() - start
        seen = []
        while not seen or seen[-1] != 120:
            seen.append(mark_of(read_part(reader)))
    assert publish_s < 10.0
    assert seen == sorted(set(seen))  # newer and newer, never a repeat
    # Kernel buffers hold some frames (about 4 MB on Linux); the rest were skipped, not queued for the client.
    assert len(seen) < 60


def test_client_that_disconnects_does_not_break_the_server(view, capfd, caplog):
    view.publish(marked_frame(0, noise=True), {})
    sock, reader = open_stream(view)
    assert mark_of(read_part(reader)) == 0
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset, not a polite close
    reader.close()
    sock.close()
    for k in range(1, 6):  # the server writes into the dead connection
        view.publish(marked_frame(k, noise=True), {})
        time.sleep(0.02)
    sock, reader = open_stream(view)
    with sock, reader:
        assert mark_of(read_part(reader)) == 5
        view.publish(marked_frame(6, noise=True), {})
        assert mark_of(read_part(reader)) == 6
    assert get(view, "/frame.jpg")[0] == 200
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_close_ends_an_open_stream():
    v = LiveView("127.0.0.1", 0).start()
    v.publish(marked_frame(0), {})
    sock, reader = open_stream(v)
    with sock, reader:
        assert mark_of(read_part(reader)) == 0
        start = time.monotonic()
        v.close()
        assert read_part(reader) is None  # the server ended the stream
        assert time.monotonic() - start < 2.0
    v.close()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", v.port), timeout=2).close()


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium()


def test_page_in_headless_chromium(chromium, view, tmp_path):
    frame = np.zeros((H, W, 3), np.uint8)
    frame[100:380, 100:540] = (0, 255, 0)  # pure green, BGR: 440 x 280 pixels
    stats = {"fps": 30.0, "latency_ms": 12.5, "counts": {"circle": 2}, "verdict": "Welcome, Ada",
             "verdict_kind": "welcome"}
    stop = threading.Event()

    def publish_until_stopped() -> None:
        while not stop.is_set():
            view.publish(frame, stats)
            stop.wait(0.05)

    publisher = threading.Thread(target=publish_until_stopped, daemon=True)
    publisher.start()
    try:
        png = screenshot(view.url, tmp_path / "live.png", size=(1000, 800))
        dom = dump_dom(view.url)
    finally:
        stop.set()
        publisher.join()

    shot = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert shot.shape == (800, 1000, 3)
    b, g, r = (shot[..., i].astype(int) for i in range(3))
    green = (g > 200) & (r < 60) & (b < 60)
    ys, xs = np.nonzero(green)
    assert green.sum() > 30_000, f"the stream's green rectangle is not on the screenshot {png}"
    box_w, box_h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    assert green.sum() > 0.97 * box_w * box_h  # one solid rectangle...
    assert abs(box_w / box_h - 440 / 280) < 0.05  # ...with the frame's proportions

    assert re.search(r'id="fps"[^>]*>30\.0<', dom)
    assert re.search(r'id="latency"[^>]*>12\.5 ms<', dom)
    assert re.search(r'id="counts"[^>]*><li>circle: 2</li></ul>', dom)
    assert re.search(r'id="verdict" class="welcome"[^>]*>Welcome, Ada<', dom)
