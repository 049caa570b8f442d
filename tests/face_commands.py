"""`edgepipe face` in-process for the tests (tests/test_face_cli_*.py): the test models and their options, the
command's exit code and output, and the reference embedding of a photo."""

import json
from pathlib import Path

import cv2
import numpy as np

from edgepipe.apps.cli import main
from edgepipe.apps.face.pipeline import FaceAnalyzer

REPO = Path(__file__).resolve().parents[1]
DETECTOR = REPO / "tests" / "assets" / "yolo-face.onnx"
ENCODER = REPO / "tests" / "assets" / "facenet.onnx"
CONF = 0.25  # the test detector is small: a lower score threshold than the command's default
MIN_FACE = 50.0
NAMES = ("Alice", "Bob", "Chen", "Dana", "Emeka")
EXACT = 1e-6  # squared L2 between two embeddings of the same crop: zero up to float rounding


def models(gallery: Path) -> list[str]:
    return ["--gallery", str(gallery), "--detector", str(DETECTOR), "--encoder", str(ENCODER), "--conf", str(CONF),
            "--detector-provider", "cpu", "--encoder-provider", "cpu"]


def face(capsys, *argv: str | Path) -> tuple[int, str, str]:
    """Run `edgepipe face ARGV` in-process. Returns (exit code, stdout, stderr)."""
    code = main(["face", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def face_json(capsys, *argv: str | Path, code: int = 0) -> dict:
    """Run `edgepipe face ARGV --json` in-process, check its exit code (0; verify's no match and identify's unknown
    are 1) and return its JSON."""
    got, out, err = face(capsys, *argv, "--json")
    assert got == code, err
    return json.loads(out)


def embed(analyzer: FaceAnalyzer, path: Path) -> np.ndarray:
    """The reference embedding of a photo's one face: (D,) float32."""
    return analyzer(cv2.imread(str(path))).embeddings[0]
