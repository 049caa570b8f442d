"""A small disk for the full-disk tests: a tmpfs of a set size mounted on a folder (root only; skipped elsewhere),
unmounted lazily afterwards so a file still open cannot keep it busy."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """folder (created) holding a file system of size bytes (tmpfs syntax: 256k, 4m); skips the test when this user
    may not mount one. Close the files opened on it before the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("no file system of a set size here (mounting a tmpfs needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True)
