"""Running the detection app from the tests (tests/test_detect_*.py): the trained small YOLO, `edgepipe detect`
in-process on it, and folders of the scenes it detects in."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgepipe.apps.cli import main
from edgepipe.export.data.detection import render_scene

ROOT = Path(__file__).resolve().parents[1]
YOLO = ROOT / "tests" / "assets" / "yolo-small.onnx"


def detect(*args: str) -> int:
    return main(["detect", "--model", str(YOLO), "--provider", "cpu", "--no-show", *args])


def scene_folder(folder: Path, n: int, seed: int) -> Path:
    """n generated shape scenes (000.png ...) written to folder, which is returned."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), render_scene(rng).image)
    return folder
