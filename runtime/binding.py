"""IO binding: a model's inputs and outputs bound to buffers on its device, for data that stays there."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from edgepipe.postprocess.errors import UserError

if TYPE_CHECKING:
    from edgepipe.runtime.session import Model


class Binding:
    """A model's inputs and outputs bound to buffers on its device (the GPU on CUDA, host memory on CPU).

    run(*batches) copies each batch into its input buffer once (no allocation per call) and runs; the outputs stay
    on the device until outputs() copies them to the host, so a caller that needs only some of them, or passes them
    on to another model on the device (device_outputs()), pays no copy. run() with no batches runs again on what
    the input buffers hold (inputs resident on the device). shapes: the bound input shapes; a batch of another
    shape is refused (bind again).
    """

    def __init__(self, model: Model, batch: int = 1, size: tuple[int, int] | None = None) -> None:
        if any(spec.dtype == object for spec in model.inputs):
            raise UserError(f"{Path(model.name).name} has an input type numpy cannot hold: it cannot be bound")
        self.model = model
        self.device = "cuda" if model.on_cuda else "cpu"
        self.shapes = model.input_shapes(batch, size)
        self.values = [
            ort.OrtValue.ortvalue_from_shape_and_type(list(shape), spec.dtype, self.device, model.device_id)
            for shape, spec in zip(self.shapes, model.inputs, strict=True)
        ]
        self._binding = model.session.io_binding()
        for spec, value in zip(model.inputs, self.values, strict=True):
            self._binding.bind_ortvalue_input(spec.name, value)
        self._filled = self._ran = False

    def run(self, *batches: np.ndarray) -> Binding:
        """Copy one checked batch per input into the bound buffers (none: keep what they hold), then run."""
        if not batches and not self._filled:
            raise UserError("the bound input buffers hold nothing yet: give the first run its batch, "
                             "binding.run(batch)")
        if batches:
            for feed, value, shape, spec in zip(
                self.model.check_inputs(batches), self.values, self.shapes, self.model.inputs, strict=True
            ):
                if feed.shape != shape:
                    raise UserError(f"input {spec.name!r} is bound to shape {shape}, but got {feed.shape}: "
                                     "bind again with model.bind(batch, size) for this shape")
                value.update_inplace(feed)
            self._filled = True
        self._bind_outputs()
        self.model.session.run_with_iobinding(self._binding)
        self._ran = True
        return self

    def outputs(self) -> list[np.ndarray]:
        """The last run's outputs copied to the host: new arrays, the caller's to keep."""
        self._check_ran()
        return self._binding.copy_outputs_to_cpu()

    def device_outputs(self) -> list[ort.OrtValue]:
        """The last run's outputs where they are (on the GPU for CUDA), as onnxruntime OrtValues."""
        self._check_ran()
        return self._binding.get_outputs()

    def _bind_outputs(self) -> None:
        """Let onnxruntime allocate every output on the device for this run: an output whose size depends on the
        data (detections after NMS in the graph) must not be handed the last run's buffer."""
        self._binding.clear_binding_outputs()
        for spec in self.model.outputs:
            self._binding.bind_output(spec.name, self.device, self.model.device_id)

    def _check_ran(self) -> None:
        if not self._ran:
            raise UserError("no outputs yet: call binding.run(batch) first")
