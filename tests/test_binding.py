"""IO binding (model.bind): bound buffers reused run after run, outputs equal to numpy's, kept on the device until
asked for, other shapes and out-of-order calls refused."""

import numpy as np
import pytest
from onnx import TensorProto

from edgepipe import runtime
from edgepipe.runtime.metadata import to_metadata_props
from tests.onnx_graphs import conv_model, conv_reference, matmul_model, nonzero_model, save
from tests.runtime_models import GPU, META


@pytest.mark.parametrize("batch", [1, 3])
def test_io_binding_equals_numpy(conv_path, batch):
    path, w, b = conv_path
    model = runtime.load(path, providers="cpu")
    binding = model.bind(batch)
    assert binding.device == "cpu" and binding.shapes == [(batch, 3, 32, 32)]
    first = None
    for seed in range(3):  # the buffers are reused: each run sees its own batch
        x = np.random.default_rng(seed).normal(size=(batch, 3, 32, 32)).astype(np.float32)
        out = binding.run(x).outputs()[0]
        np.testing.assert_allclose(out, conv_reference(x, w, b), atol=1e-4)
        first = out if first is None else first
    np.testing.assert_allclose(binding.run().outputs()[0], out, atol=0)  # no batch: runs on what is bound
    x0 = np.random.default_rng(0).normal(size=(batch, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(first, conv_reference(x0, w, b), atol=1e-4)  # earlier outputs are not overwritten
    (value,) = binding.device_outputs()
    assert value.device_name() == "cpu" and value.shape() == [batch, 4, 32, 32]


def test_io_binding_of_two_inputs_and_fp16(tmp_path, conv_path):
    mm = runtime.load(matmul_model(k=3).SerializeToString(), providers="cpu")
    a, c = np.ones((2, 4, 3), np.float32), np.full((2, 3, 5), 2.0, np.float32)
    np.testing.assert_allclose(mm.bind(2).run(a, c).outputs()[0], np.full((2, 4, 5), 6.0))
    half, w, b = conv_model(dtype=TensorProto.FLOAT16, props=to_metadata_props(META))
    h = runtime.load(save(half, tmp_path / "h.onnx"), providers="cpu")
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    out = h.bind().run(x).outputs()[0]  # float32 in: cast once, as model.run does
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, conv_reference(x, w, b), atol=0.05, rtol=0.02)


def test_io_binding_of_an_output_whose_size_follows_the_data():
    """NMS in the graph gives a different number of detections per frame: each run gets outputs of its own size."""
    binding = runtime.load(nonzero_model().SerializeToString(), providers="cpu").bind(1)
    for count in (4, 5, 0, 2):
        x = np.zeros((1, 3, 8, 8), np.float32)
        x.reshape(-1)[:count] = 1.0
        np.testing.assert_array_equal(binding.run(x).outputs()[0], np.stack(np.nonzero(x > 0)))


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ([np.zeros((2, 3, 32, 32), np.float32)], r"bound to shape \(1, 3, 32, 32\), but got \(2, 3, 32, 32\)"),
        ([np.zeros((1, 3, 32, 32), np.int32)], "must be float32, but got int32"),
        ([np.zeros((1, 2, 32, 32), np.float32)], "channel dimension 1 must be 3"),
    ],
)
def test_io_binding_refuses_other_shapes(conv_path, batches, message):
    binding = runtime.load(conv_path[0], providers="cpu").bind(1)
    with pytest.raises(ValueError, match=message):
        binding.run(*batches)


def test_io_binding_used_out_of_order(conv_path):
    binding = runtime.load(conv_path[0], providers="cpu").bind(1)
    with pytest.raises(ValueError, match=r"no outputs yet: call binding.run\(batch\) first"):
        binding.outputs()
    with pytest.raises(ValueError, match="no outputs yet"):
        binding.device_outputs()
    with pytest.raises(ValueError, match=r"hold nothing yet: give the first run its batch"):
        binding.run()


@pytest.mark.gpu
@GPU
def test_io_binding_on_cuda_matches_cpu(conv_path):
    path, w, b = conv_path
    binding = runtime.load(path, providers="cuda").bind(2)
    assert binding.device == "cuda"
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    assert binding.run(x).device_outputs()[0].device_name() == "cuda"  # kept on the GPU until asked for
    np.testing.assert_allclose(binding.outputs()[0], conv_reference(x, w, b), atol=1e-3)

