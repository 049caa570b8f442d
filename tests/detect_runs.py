"""Running the detection app from the tests (tests/test_detect_*.py): the trained small YOLO and `edgepipe detect`
in-process on it."""

from __future__ import annotations

from pathlib import Path

from edgepipe.apps.cli import main

ROOT = Path(__file__).resolve().parents[1]
YOLO = ROOT / "tests" / "assets" / "yolo-small.onnx"


def detect(*args: str) -> int:
    return main(["detect", "--model", str(YOLO), "--provider", "cpu", "--no-show", *args])
