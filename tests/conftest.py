"""Fixtures shared by several test files."""

import pytest

from edgepipe.runtime.metadata import to_metadata_props
from tests.onnx_graphs import conv_model, save
from tests.runtime_models import META


@pytest.fixture
def conv_path(tmp_path):
    """The conv model described by META, saved as conv.onnx: (path, weight, bias) for tests.onnx_graphs's
    conv_reference."""
    model, w, b = conv_model(props=to_metadata_props(META))
    return save(model, tmp_path / "conv.onnx"), w, b
