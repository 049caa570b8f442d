"""Fixtures shared by several test files."""

from pathlib import Path

import pytest

from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.export.data.detection import make_video
from edgepipe.runtime.metadata import to_metadata_props
from tests.gallery_data import make_encoder
from tests.onnx_graphs import conv_model, save
from tests.runtime_models import META


@pytest.fixture
def conv_path(tmp_path):
    """The conv model described by META, saved as conv.onnx: (path, weight, bias) for tests.onnx_graphs's
    conv_reference."""
    model, w, b = conv_model(props=to_metadata_props(META))
    return save(model, tmp_path / "conv.onnx"), w, b


# ---------------------------------------------------------------- the face gallery (tests/test_gallery_*.py)


@pytest.fixture
def encoder(tmp_path: Path) -> EncoderId:
    return make_encoder(tmp_path, b"encoder one: stands in for ONNX bytes")


@pytest.fixture
def db(tmp_path: Path, encoder: EncoderId):
    with FaceDB.open(tmp_path / "gallery.db", encoder) as opened:
        yield opened


# ---------------------------------------------------------------- the detection app (tests/test_detect_*.py)


@pytest.fixture(scope="session")
def video(tmp_path_factory) -> Path:
    """A generated 640x480 test video (mp4) with ground truth beside it."""
    path = tmp_path_factory.mktemp("video") / "shapes.mp4"
    make_video(path, n_frames=120, seed=3)
    return path
