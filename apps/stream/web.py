"""The live browser view shared by the camera apps: per source an MJPEG stream, the latest frame and stats, a page."""

from __future__ import annotations

import errno
import ipaddress
import json
import logging
import math
import socketserver
import sys
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from edgepipe.apps.stream.pages import grid_page, source_page
from edgepipe.postprocess.errors import UserError

log = logging.getLogger("edgepipe.web")

BOUNDARY = "frame"
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)

def parse_address(text: str) -> tuple[str, int]:
    """(host, port) from "HOST:PORT"; ":PORT" means 127.0.0.1, port 0 means any free port."""
    host, sep, port_text = str(text).strip().rpartition(":")
    if not sep or not port_text.isdigit() or ":" in host or any(c.isspace() for c in host):
        raise UserError(f"expected HOST:PORT (e.g. 127.0.0.1:8080 or :8080), got {text!r}")
    port = int(port_text)
    if port > 65535:
        raise UserError(f"port must be in 0..65535 (0 = any free port), got {port} in {text!r}")
    return host or "127.0.0.1", port


def to_jsonable(value: Any) -> Any:
    """value with numpy scalars and arrays as Python numbers and lists, and NaN/inf as None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _Server(ThreadingHTTPServer):
    """The HTTP server, holding its LiveView; a client that goes away is logged at DEBUG, never as a traceback."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], view: LiveView) -> None:
        self.view = view
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's full name (a reverse DNS lookup that can stall); not needed here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: tuple[str, int]) -> None:
        if isinstance(sys.exc_info()[1], CLIENT_GONE):
            log.debug("client %s went away", client_address, exc_info=True)
        else:
            log.exception("live view: the request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    """GET / (the page: one source's, or the grid of several), and per source its page, stream.mjpg, frame.jpg and
    stats.json: at the top for the only, unnamed source, under /source/NAME/ for a named one; anything else is 404."""

    server: _Server
    timeout = 10.0  # seconds a client may stall one write before its stream is dropped

    def do_GET(self) -> None:
        view = self.server.view
        path = urllib.parse.unquote(self.path.split("?", 1)[0])
        source, sep, leaf = path.removeprefix("/source/").rpartition("/") if path.startswith("/source/") else (
            "", "/", path.removeprefix("/"))
        try:
            if path == "/":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", view.page)
            elif not sep or not view.has_source(source):
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found: try / for the live view\n")
            elif leaf == "":
                self._send(HTTPStatus.OK, "text/html; charset=utf-8", view.source_page(source))
            elif leaf == "stream.mjpg":
                self._stream(view, source)
            elif leaf == "frame.jpg":
                jpeg = view.latest_jpeg(source)
                if jpeg is None:
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", b"no frame published yet\n")
                else:
                    self._send(HTTPStatus.OK, "image/jpeg", jpeg)
            elif leaf == "stats.json":
                self._send(HTTPStatus.OK, "application/json", view.latest_stats_json(source))
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found: try / for the live view\n")
        except CLIENT_GONE as exc:
            log.debug("client %s went away during %s: %s", self.client_address, path, exc)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, view: LiveView, source: str) -> None:
        """multipart/x-mixed-replace: each part is the newest JPEG; frames published meanwhile are skipped."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        while True:
            jpeg, seq = view.wait_newer(seq, source)
            if jpeg is None:  # the view closed
                return
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            self.wfile.write(head + jpeg + b"\r\n")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


@dataclass
class _Channel:
    """One source's newest frame (JPEG), its stats (JSON) and the frame's number."""

    jpeg: bytes | None = None
    stats_json: bytes = b"{}"
    seq: int = 0


class LiveView:
    """The browser view of a running app: publish(frame, stats, source) per frame; clients see the newest one.

    sources: the names of the run's sources: ("",) for the only, unnamed one (its page at /), or several names (a
    grid at /, each source's page at /source/NAME/). publish() encodes the JPEG once and never waits on clients:
    each streaming client runs in its own thread and sends the newest frame when it is ready for one, so a slow
    client skips frames instead of queueing them.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, title: str = "edgepipe", jpeg_quality: int = 80,
                 sources: Sequence[str] = ("",)) -> None:
        if not 0 <= int(port) <= 65535:
            raise UserError(f"port must be in 0..65535 (0 = any free port), got {port}")
        if not 1 <= int(jpeg_quality) <= 100:
            raise UserError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.host, self.port, self.title, self.jpeg_quality = host, int(port), title, int(jpeg_quality)
        self._channels = {name: _Channel() for name in sources}
        self.page = source_page(title) if tuple(sources) == ("",) else grid_page(title, list(sources))
        self._cond = threading.Condition()
        self._closed = False
        self._server: _Server | None = None
        self._url = ""
        self._thread: threading.Thread | None = None

    def has_source(self, name: str) -> bool:
        return name in self._channels

    def source_page(self, name: str) -> bytes:
        """The page of one source (the title names it in a run with several)."""
        return source_page(f"{self.title}: {name}" if name else self.title)

    def start(self) -> LiveView:
        """Bind host:port and serve in a daemon thread. Raises UserError when the address cannot be bound."""
        if self._server is not None or self._closed:
            raise RuntimeError("LiveView.start(): already started (or closed); create a new LiveView")
        where = f"{self.host}:{self.port}"
        try:
            self._server = _Server((self.host, self.port), self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                fix = "address already in use: choose another --serve port"
            else:
                fix = f"{exc.strerror or exc}: check the --serve host and port"
            raise UserError(f"cannot listen on {where}: {fix}") from None
        bound_ip, self.port = self._server.server_address[:2]
        if not ipaddress.ip_address(bound_ip).is_loopback:
            log.warning("live view on %s:%d is reachable from the network (anyone who can reach this machine "
                        "can watch); use 127.0.0.1 to keep it local", bound_ip, self.port)
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host  # browsers refuse 0.0.0.0
        self._url = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="liveview", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Where to open the view on this machine (the actual port when 0 was asked; 127.0.0.1 for 0.0.0.0)."""
        if not self._url:
            raise RuntimeError("LiveView.url: not started; call start() first")
        return self._url

    def publish(self, frame: np.ndarray, stats: dict[str, Any], source: str = "") -> None:
        """Show frame (H, W, 3) uint8 BGR and stats (JSON-able; numpy scalars allowed) as source's to every client."""
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            got = f"shape {frame.shape} {frame.dtype}" if isinstance(frame, np.ndarray) else type(frame).__name__
            raise UserError(f"frame must be a (H, W, 3) uint8 BGR array, got {got}")
        if not isinstance(stats, dict):
            raise UserError(f"stats must be a dict, got {type(stats).__name__}")
        if source not in self._channels:
            raise UserError(f"source {source!r} is not one of this view's: {', '.join(map(repr, self._channels))}")
        try:
            stats_json = json.dumps(to_jsonable(stats)).encode()
        except TypeError as exc:
            raise UserError(f"stats must be JSON-serialisable (numbers, strings, lists, dicts): {exc}") from None
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if not ok:
            raise UserError(f"cannot encode a JPEG from a frame of shape {frame.shape}")
        with self._cond:
            channel = self._channels[source]
            channel.jpeg, channel.stats_json = buf.tobytes(), stats_json
            channel.seq += 1
            self._cond.notify_all()

    def latest_jpeg(self, source: str = "") -> bytes | None:
        """The newest published frame of source as JPEG bytes, None before its first publish."""
        with self._cond:
            return self._channels[source].jpeg

    def latest_stats_json(self, source: str = "") -> bytes:
        """The newest published stats of source as JSON (b"{}" before its first publish)."""
        with self._cond:
            return self._channels[source].stats_json

    def wait_newer(self, seq: int, source: str = "") -> tuple[bytes | None, int]:
        """Block until a frame of source newer than number seq is published: (jpeg, its number); (None, seq) once
        closed."""
        channel = self._channels[source]
        with self._cond:
            self._cond.wait_for(lambda: self._closed or channel.seq > seq)
            return (None, seq) if self._closed else (channel.jpeg, channel.seq)

    def close(self) -> None:
        """Stop serving and end every open stream; safe to call more than once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
