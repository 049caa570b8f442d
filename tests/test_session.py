"""onnxruntime sessions on tiny graphs: outputs against numpy, providers reported, clear errors for bad input."""

import logging

import numpy as np
import pytest
from onnx import TensorProto

import runtime
from runtime.metadata import ModelMeta, to_metadata_props
from runtime.preprocess import PreprocessSpec, preprocess
from runtime.session import cuda_device_present
from tests.onnx_graphs import IR_VERSION, conv_model, conv_reference, save

META = ModelMeta(task="classify", preprocess=PreprocessSpec((32, 32), resize="resize"), class_names=("a", "b"))
NO_GPU = pytest.mark.skipif(cuda_device_present(), reason="checks the behaviour of a machine without a GPU")
GPU = pytest.mark.skipif(not cuda_device_present(), reason="needs an NVIDIA GPU (CI has none)")


@pytest.fixture
def conv_path(tmp_path):
    model, w, b = conv_model(props=to_metadata_props(META))
    return save(model, tmp_path / "conv.onnx"), w, b


def test_outputs_equal_numpy_and_provider_is_reported(conv_path, caplog):
    path, w, b = conv_path
    with caplog.at_level(logging.INFO, logger="edgepipe.runtime"):
        model = runtime.load(path, providers="cpu")
    assert model.providers[0] == "CPUExecutionProvider"
    assert "runs on CPUExecutionProvider" in caplog.text
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(model.run(x)[0], conv_reference(x, w, b), atol=1e-4)
    assert model.inputs[0].shape == ("N", 3, 32, 32)
    assert model.meta == META


def test_call_uses_the_one_preprocessing(conv_path):
    path, w, b = conv_path
    model = runtime.load(path, providers="cpu")
    frames = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(3)]
    outputs, transforms = model(frames)
    expected = conv_reference(preprocess(frames, META.preprocess).batch, w, b)
    np.testing.assert_allclose(outputs[0], expected, atol=1e-4)
    assert [t.src_size for t in transforms] == [(48, 64)] * 3


def test_fp16_model_gets_fp16_input(tmp_path):
    model, w, b = conv_model(dtype=TensorProto.FLOAT16, props=to_metadata_props(META))
    m = runtime.load(save(model, tmp_path / "h.onnx"), providers="cpu")
    assert m.spec.dtype == "float16"
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    out = m.run(x)[0]  # float32 in: cast once for the fp16 model
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, conv_reference(x, w, b), atol=0.05, rtol=0.02)


def test_model_without_metadata_still_runs_and_says_why(tmp_path):
    model, _, _ = conv_model(size=(8, 8))
    m = runtime.load(save(model, tmp_path / "bare.onnx"), providers="cpu")
    assert m.run(np.zeros((1, 3, 8, 8), np.float32))[0].shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match=r"bare.onnx: model cannot be described: missing \['task', 'imgsz'\]"):
        _ = m.meta
    overridden = runtime.load(tmp_path / "bare.onnx", providers="cpu", overrides={"task": "classify", "imgsz": 8,
                                                                                 "names": ["x"]})
    assert overridden.meta.source == "options"


@NO_GPU
def test_cuda_without_gpu_is_an_error_unless_fallback_allowed(conv_path, caplog):
    path, _, _ = conv_path
    with pytest.raises(ValueError, match=r"CUDAExecutionProvider was requested but could not run here"):
        runtime.load(path, providers="cuda")
    with caplog.at_level(logging.WARNING, logger="edgepipe.runtime"):
        model = runtime.load(path, providers="cuda", allow_fallback=True)
    assert model.providers[0] == "CPUExecutionProvider"
    assert "could not run here; CPUExecutionProvider runs the model" in caplog.text
    assert runtime.load(path, providers="auto").providers[0] == "CPUExecutionProvider"


@GPU
def test_cuda_matches_cpu_with_io_binding(conv_path):
    path, _, _ = conv_path
    gpu, cpu = runtime.load(path, providers="cuda"), runtime.load(path, providers="cpu")
    assert gpu.on_cuda
    x = np.random.default_rng(0).normal(size=(4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(gpu.run(x)[0], cpu.run(x)[0], atol=1e-3)


def test_session_options(conv_path, tmp_path):
    path, _, _ = conv_path
    optimized = tmp_path / "opt.onnx"
    model = runtime.load(path, providers=["cpu"], intra_op_threads=1, graph_opt="basic", optimized_path=optimized,
                         warmup=2)
    assert optimized.is_file() and model.providers == ["CPUExecutionProvider"]


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        (np.zeros((3, 32, 32), np.float32), r"must have rank 4 .* but got shape \(3, 32, 32\)"),  # no batch axis
        (np.zeros((1, 1, 32, 32), np.float32), r"channel dimension 1 must be 3 .* but got 1"),  # gray for RGB
        (np.zeros((1, 3, 64, 32), np.float32), r"size dimension 2 must be 32 .* but got 64"),  # wrong size
        (np.zeros((1, 3, 32, 32), np.uint8), r"must be float32, but got uint8"),  # raw pixels
        ([[0.0]], r"must be a numpy array, but got list"),  # not an array
    ],
)
def test_bad_inputs(conv_path, batch, message):
    model = runtime.load(conv_path[0], providers="cpu")
    with pytest.raises(ValueError, match=message):
        model.run(batch)


def test_batch_over_a_fixed_batch_dimension(tmp_path):
    model, _, _ = conv_model(batch=1)
    m = runtime.load(save(model, tmp_path / "b1.onnx"), providers="cpu")
    with pytest.raises(ValueError, match=r"batch dimension 0 must be 1 .* but got 4 .* dynamic batch axis"):
        m.run(np.zeros((4, 3, 32, 32), np.float32))


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model file not found: .*missing.onnx"):
        runtime.load(tmp_path / "missing.onnx")
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty.onnx is empty"):
        runtime.load(tmp_path / "empty.onnx")
    (tmp_path / "junk.onnx").write_bytes(np.random.default_rng(0).bytes(500))
    with pytest.raises(ValueError, match=r"junk.onnx is not a valid ONNX model"):
        runtime.load(tmp_path / "junk.onnx")
    model, _, _ = conv_model()
    data = model.SerializeToString()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.onnx is not a valid ONNX model"):
        runtime.load(tmp_path / "cut.onnx")


def test_too_new_ir_and_opset(tmp_path):
    model, _, _ = conv_model()
    model.ir_version = 14
    with pytest.raises(ValueError, match=r"IR version is newer than this onnxruntime reads"):
        runtime.load(save(model, tmp_path / "ir.onnx"))
    model.ir_version = IR_VERSION
    model.opset_import[0].version = 99
    with pytest.raises(ValueError, match=r"operator set this onnxruntime cannot run"):
        runtime.load(save(model, tmp_path / "opset.onnx"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"providers": "tpu"}, r"provider 'tpu' is not available in this onnxruntime build"),
        ({"graph_opt": "max"}, r"graph_opt must be one of"),
        ({"cudnn_search": "fast"}, r"cudnn_search must be one of"),
    ],
)
def test_bad_options(conv_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        runtime.load(conv_path[0], **kwargs)
