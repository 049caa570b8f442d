"""The servers the apps talk to (PostgreSQL for galleries, an MQTT broker for events): their URLs shown without a
password, the error for a server that cannot be reached, and the reconnect backoff."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

BACKOFF_S = (0.5, 8.0)  # reconnect waits: the first, doubling up to the last


class Unreachable(RuntimeError):
    """A server the run needs does not answer (it is down, or nothing listens at that address): the command line
    prints the message as one line, exit code 1 (a failed run: the same command may work later). A server that
    answers and refuses (a wrong password, an unknown database) is a UserError instead: exit code 2."""


def redact(url: str) -> str:
    """url as shown in logs and errors: scheme://user@host:port/path, without its password or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return f"{url.partition('://')[0]}://(unreadable address)"
    if ":" in host:
        host = f"[{host}]"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{'' if port is None else f':{port}'}{parts.path}"


def scrub(text: str, secret: str | None) -> str:
    """text with every occurrence of secret (a password) replaced by ***."""
    return text.replace(secret, "***") if secret else text


class Backoff:
    """Reconnect waits: BACKOFF_S[0] seconds, doubling up to BACKOFF_S[1]; reset() after a success."""

    def __init__(self, first: float = BACKOFF_S[0], most: float = BACKOFF_S[1]) -> None:
        self.first, self.most = first, most
        self.delay = first

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the current delay (or until stop is set) and double it. Returns whether stop was set."""
        stopped = stop.wait(self.delay)
        self.delay = min(self.delay * 2, self.most)
        return stopped

    def reset(self) -> None:
        self.delay = self.first
