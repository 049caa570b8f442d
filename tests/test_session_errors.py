"""runtime.load and Model.run refuse bad batches, files, models and options with one clear UserError."""

import numpy as np
import pytest
from onnx import TensorProto

from edgepipe import runtime
from edgepipe.postprocess.errors import UserError
from tests.onnx_graphs import IR_VERSION, conv_model, conv_reference, identity_model, matmul_model, save


@pytest.mark.parametrize(
    ("batches", "message"),
    [
        ((np.zeros((3, 32, 32), np.float32),), r"must have rank 4 .* but got shape \(3, 32, 32\)"),  # no batch axis
        ((np.zeros((1, 1, 32, 32), np.float32),), r"channel dimension 1 must be 3 .* but got 1"),  # gray for RGB
        ((np.zeros((1, 3, 64, 32), np.float32),), r"size dimension 2 must be 32 .* but got 64"),  # wrong height
        ((np.zeros((1, 3, 32, 31), np.float32),), r"size dimension 3 must be 32 .* but got 31"),  # wrong width
        ((np.zeros((1, 3, 32, 32), np.uint8),), r"must be float32, but got uint8"),  # raw pixels
        ((np.zeros((1, 3, 32, 32), np.float64),), r"must be float32, but got float64"),  # numpy's default float
        (([[0.0]],), r"must be a numpy array, but got list"),  # not an array
        ((), r"conv.onnx takes 1 input\(s\) \(x\), but got 0 array\(s\)"),  # nothing
        ((np.zeros((1, 3, 32, 32), np.float32),) * 2, r"takes 1 input\(s\) \(x\), but got 2"),  # one too many
    ],
)
def test_bad_inputs(conv_path, batches, message):
    model = runtime.load(conv_path[0], providers="cpu")
    with pytest.raises(ValueError, match=message):
        model.run(*batches)


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "message"),
    [
        ((2, 4, 8), (3, 8, 5), r"input 'b' dimension 0 \(N\) must equal 2 as in input 'a', but got 3"),  # N differs
        ((2, 4, 7), (2, 8, 5), r"input 'a' size dimension 2 must be 8"),  # inner dims do not match
    ],
)
def test_two_inputs_must_agree(a_shape, b_shape, message):
    m = runtime.load(matmul_model().SerializeToString(), providers="cpu")
    with pytest.raises(ValueError, match=message):
        m.run(np.zeros(a_shape, np.float32), np.zeros(b_shape, np.float32))
    with pytest.raises(ValueError, match=r"takes 2 inputs \(a, b\): preprocess each"):
        m(np.zeros((8, 8, 3), np.uint8))


@pytest.mark.parametrize(
    ("batch", "error"),
    [
        (1, None),  # exactly the fixed batch
        (4, r"batch dimension 0 must be 1 .* but got 4 .* export with a dynamic batch axis"),  # over it
        (0, r"batch dimension 0 must be 1 .* but got 0 in shape"),  # under it: no hint about fewer images
    ],
)
def test_fixed_batch_dimension(tmp_path, batch, error):
    model, w, b = conv_model(batch=1)
    m = runtime.load(save(model, tmp_path / "b1.onnx"), providers="cpu")
    x = np.ones((batch, 3, 32, 32), np.float32)
    if error is None:
        np.testing.assert_allclose(m.run(x)[0], conv_reference(x, w, b), atol=1e-4)
    else:
        with pytest.raises(ValueError, match=error):
            m.run(x)


def test_element_type_numpy_cannot_feed():
    m = runtime.load(identity_model((2, 3), TensorProto.BFLOAT16).SerializeToString(), providers="cpu")
    assert m.inputs[0].describe() == "x: tensor(bfloat16) (2, 3)"
    with pytest.raises(ValueError, match=r"input 'x' has element type tensor\(bfloat16\), which edgepipe cannot feed"):
        m.run(np.zeros((2, 3), np.float32))


def _serialized() -> bytes:
    return conv_model()[0].SerializeToString()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, UserError, r"model file not found: .*m.onnx"),  # no file
        (b"", ValueError, r"model file .*m.onnx is empty"),  # zero bytes
        (np.random.default_rng(0).bytes(500), ValueError, r"m.onnx is not a valid ONNX model \(truncated"),  # noise
        (b"name: not a model\n", ValueError, r"m.onnx is not a valid ONNX model"),  # text
        (_serialized()[: len(_serialized()) // 2], ValueError, r"m.onnx is not a valid ONNX model"),  # cut in half
        (_serialized()[:-7], ValueError, r"m.onnx is not a valid ONNX model"),  # the last bytes lost
    ],
)
def test_bad_files(tmp_path, content, error, message):
    path = tmp_path / "m.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        runtime.load(path)


def _edited(field: str, value: object) -> bytes:
    model, _, _ = conv_model()
    if field == "ir_version":
        model.ir_version = value
    elif field == "opset":
        model.opset_import[0].version = value
    else:
        model.graph.node[1].op_type = value
    return model.SerializeToString()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_edited("ir_version", 14), r"ONNX IR version 14 is newer than this onnxruntime reads \(<= \d+\)"),  # too new
        (_edited("opset", 99), r"opset 99 is newer than this onnxruntime runs \(ai.onnx up to \d+\): export with an "
                               r"older opset"),  # opset from the future
        (_edited("opset", 1), r"onnxruntime cannot load .*m.onnx: Could not find an implementation for Relu\(1\)"),
        (_edited("op", "Relux"), r"onnxruntime cannot load .*m.onnx: .*No Op registered for Relux"),  # unknown op
    ],
)
def test_models_onnxruntime_cannot_run(tmp_path, data, message):
    (tmp_path / "m.onnx").write_bytes(data)
    with pytest.raises(ValueError, match=message):
        runtime.load(tmp_path / "m.onnx", providers="cpu")


def test_ir_version_used_by_the_test_graphs_loads():
    # Guards the table above: the unedited graph loads, so each error comes from the one edit.
    assert conv_model()[0].ir_version == IR_VERSION
    runtime.load(_edited("ir_version", IR_VERSION), providers="cpu")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"providers": "tpu"}, r"providers must be 'auto', 'cuda', 'cpu' or onnxruntime provider names, but got "
                               r"'tpu'"),  # not a provider
        ({"providers": ["cpu", "gpu"]}, r"but got 'gpu'"),  # one bad name in a list
        ({"providers": "CoreMLExecutionProvider"}, r"provider 'CoreMLExecutionProvider' is not available"),  # Mac
        ({"graph_opt": "max"}, r"graph_opt must be one of \('disable', 'basic', 'extended', 'all'\), but got 'max'"),
        ({"cudnn_search": "fast"}, r"cudnn_search must be one of .*, but got 'fast'"),
        ({"gpu_mem_limit": 0}, r"gpu_mem_limit must be > 0 bytes .*, but got 0"),
        ({"device_id": -1}, r"device_id must be >= 0, but got -1"),
        ({"intra_op_threads": -2}, r"intra_op_threads must be >= 0, but got -2"),
        ({"inter_op_threads": -1}, r"inter_op_threads must be >= 0, but got -1"),
        ({"warmup": -1}, r"warmup must be >= 0, but got -1"),
    ],
)
def test_bad_options(conv_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runtime.load(conv_path[0], **kwargs)
