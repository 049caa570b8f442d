"""What the face gallery tests (tests/test_gallery_*.py) enroll: embeddings and crops that are a function of a name,
encoder ids for fake model files, and a plain sqlite3 look at the file."""

import sqlite3
import zlib
from pathlib import Path

import numpy as np

from edgepipe.apps.face.gallery import EncoderId

REPO = Path(__file__).resolve().parents[1]
D = 16  # embedding size of the fake encoder


def vectors_for(name: str, k: int) -> np.ndarray:
    """(k, D) float32, not unit length, a function of name only: what a test enrolls for that name."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    return (3.0 * rng.standard_normal((k, D))).astype(np.float32)


def crops_for(name: str, k: int) -> list[np.ndarray]:
    """k random (20, 24, 3) uint8 face crops, a function of name only."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")) + 1)
    return [rng.integers(0, 256, (20, 24, 3), dtype=np.uint8) for _ in range(k)]


def make_encoder(folder: Path, content: bytes, size: int = D, file: str = "enc.onnx") -> EncoderId:
    model = folder / file
    model.write_bytes(content)
    return EncoderId.of_file(model, size)


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection, independent of FaceDB, to look at the file."""
    return sqlite3.connect(path, isolation_level=None)
