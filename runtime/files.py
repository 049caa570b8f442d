"""Files written whole or not at all: a temporary file in the target folder, fsynced, then renamed over the target."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write data to path through a temporary file in the same folder, then rename it over path: a reader sees the
    old file or the new one, never half of one. The file gets the usual permissions (0666 less the umask, 0644 by
    default, as open() gives); mkstemp's 0600 would hide a model from the service that runs it."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
