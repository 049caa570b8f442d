"""What the runtime's tests share: the metadata of their described conv model, and marks for machines with a GPU."""

import onnxruntime as ort
import pytest

from edgepipe.runtime.metadata import ModelMeta
from edgepipe.runtime.preprocessing import PreprocessSpec
from edgepipe.runtime.session import cuda_device_present

META = ModelMeta(task="classify", preprocess=PreprocessSpec((32, 32), resize="resize"), class_names=("a", "b"))
NO_GPU = pytest.mark.skipif(cuda_device_present(), reason="checks the behaviour of a machine without a GPU")
GPU = pytest.mark.skipif(
    not cuda_device_present() or "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="needs an NVIDIA GPU and onnxruntime-gpu (CI has no GPU)",
)
