"""edgepipe runtime: onnxruntime sessions, preprocessing and model metadata (numpy, OpenCV, onnxruntime; no torch)."""

from edgepipe.runtime.binding import Binding
from edgepipe.runtime.metadata import ModelMeta, from_metadata_props, read_metadata, to_metadata_props
from edgepipe.runtime.preprocessing import Preprocessed, PreprocessSpec, center_crop, letterbox, preprocess, resize
from edgepipe.runtime.session import Model, load
from edgepipe.runtime.tensors import TensorSpec

__all__ = [
    "Binding",
    "Model",
    "ModelMeta",
    "PreprocessSpec",
    "Preprocessed",
    "TensorSpec",
    "center_crop",
    "from_metadata_props",
    "letterbox",
    "load",
    "preprocess",
    "read_metadata",
    "resize",
    "to_metadata_props",
]
