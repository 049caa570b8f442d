"""Fixtures shared by several test files."""

import signal
from pathlib import Path

import cv2
import pytest

from edgepipe.apps.detect.pipeline import Detector
from edgepipe.apps.face.gallery import EncoderId, FaceDB
from edgepipe.apps.face.pipeline import Encoder, FaceAnalyzer
from edgepipe.export.data.detection import make_video
from edgepipe.export.data.faces import identity_splits
from edgepipe.export.data.kiosk import enrollment_images
from edgepipe.runtime import load
from edgepipe.runtime.metadata import to_metadata_props
from tests.face_commands import CONF, DETECTOR, ENCODER, MIN_FACE, NAMES
from tests.gallery_data import make_encoder
from tests.onnx_graphs import conv_model, save
from tests.runtime_models import META

pytest_plugins = ["tests.servers"]  # the throwaway PostgreSQL and Mosquitto fixtures

# A test run started in the background (`pytest &` in a script) inherits SIGINT ignored, and every command the tests
# start would inherit it too: the Ctrl-C tests need it delivered. A handler here is reset to the default in children.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


# ---------------------------------------------------------------- `edgepipe face` (tests/test_face_cli_*.py)


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    """The pipeline the command builds, used as the reference and to pick photos the test detector finds."""
    detector = Detector(load(DETECTOR, providers="cpu"), CONF)
    return FaceAnalyzer(detector, Encoder(load(ENCODER, providers="cpu")), 0.0, MIN_FACE)


@pytest.fixture(scope="session")
def photos(tmp_path_factory, analyzer) -> dict[str, list[Path]]:
    """Enrollment photos (480 x 640 BGR PNG) of five test-split identities, keeping those with exactly one face of
    at least MIN_FACE px for the test detector; the identity with the most such photos is Alice (>= 2 photos)."""
    folder = tmp_path_factory.mktemp("photos")
    faces = identity_splits()["test"].faces[:10]
    per_identity = 3
    images = enrollment_images(faces, per_identity, seed=7)
    usable: list[list[Path]] = []
    for k in range(len(faces)):
        paths = []
        for j in range(per_identity):
            image = images[k * per_identity + j]
            found = analyzer(image)
            if len(found) == 1 and found.embedded[0]:
                paths.append(folder / f"id{k}_{j}.png")
                cv2.imwrite(str(paths[-1]), image)
        if paths:
            usable.append(paths)
    usable.sort(key=len, reverse=True)
    assert len(usable) >= len(NAMES) and len(usable[0]) >= 2, "the test detector finds too few faces"
    return dict(zip(NAMES, usable, strict=False))
