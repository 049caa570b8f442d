"""A window classifier's convolutional form as an export source: the same weights, every window in one pass."""

from __future__ import annotations

from edgepipe.export.data.samples import sample_frames
from edgepipe.export.data.windows import window_meta
from edgepipe.export.models.windows import ConvWindows, WindowClassifier
from edgepipe.export.onnx.export import Source
from edgepipe.export.predict import meta_from_flat
from edgepipe.postprocess.errors import UserError


def convolutional_source(source: Source, imgsz: tuple[int, int] | None = None, samples: int = 8) -> Source:
    """source's window classifier as ConvWindows (ConvWindows.from_classifier), described as a "windows" detector
    over imgsz images (default: the window scenes' size; the file takes any size), with the classifier's metrics
    and sample scenes for parity. UserError for any other model."""
    if not isinstance(source.model, WindowClassifier):
        raise UserError(f"--conv needs a window classifier (the window recipe's checkpoint, or the zoo's window), "
                         f"but {source.name} is a {type(source.model).__name__}")
    meta = meta_from_flat(window_meta(convolutional=True, input_size=imgsz), source.meta.metrics)
    return Source("window-conv", ConvWindows.from_classifier(source.model), meta, sample_frames(meta, samples))
