"""Headless Chromium for tests: find it, take a screenshot of a page, dump a page's DOM after its scripts ran."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install it with: apt-get install -y --no-install-recommends chromium"


def require_chromium() -> str:
    """Chromium's path; skips the test when there is none, or fails it when EDGEPIPE_REQUIRE_BROWSER=1 (CI)."""
    import pytest

    path = find_chromium()
    if path is None:
        if os.environ.get("EDGEPIPE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EDGEPIPE_REQUIRE_BROWSER=1 but no chromium on PATH: {INSTALL_HINT}")
        pytest.skip(f"no chromium on PATH ({INSTALL_HINT}; EDGEPIPE_REQUIRE_BROWSER=1 makes this a failure)")
    return path


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on PATH, None when there is none."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def run_chromium(args: list[str], budget_ms: int, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on args, pages given budget_ms of virtual time. Fails with Chromium's stderr."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}): {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="edgepipe-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
               f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise RuntimeError(f"chromium did not finish in {timeout_s} s: {' '.join(cmd)}\n{err[-3000:]}") from None
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited with {done.returncode}: {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return done


def screenshot(url: str, png_path: str | Path, size: tuple[int, int] = (1000, 800), budget_ms: int = 2000,
               timeout_s: float = 30.0) -> Path:
    """Save a PNG of url as seen in a size (width, height) window after budget_ms of virtual time; its path."""
    png_path = Path(png_path)
    done = run_chromium([f"--window-size={size[0]},{size[1]}", f"--screenshot={png_path}", url], budget_ms, timeout_s)
    if not png_path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png_path}; its stderr:\n{done.stderr[-3000:]}")
    return png_path


def dump_dom(url: str, budget_ms: int = 2000, timeout_s: float = 30.0) -> str:
    """The serialised DOM of url after budget_ms of virtual time (what the page's scripts made of it)."""
    return run_chromium(["--dump-dom", url], budget_ms, timeout_s).stdout
