"""onnxruntime sessions on tiny graphs: outputs against numpy, the one preprocessing, providers reported and
chosen, metadata read, graph optimization levels."""

import logging

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from edgepipe import runtime
from edgepipe.runtime.metadata import ModelMeta, to_metadata_props
from edgepipe.runtime.preprocessing import PreprocessSpec, preprocess
from tests.onnx_graphs import conv_model, conv_reference, identity_model, matmul_model, save
from tests.runtime_models import GPU, META, NO_GPU


@pytest.mark.parametrize("seed", range(10))
def test_conv_outputs_equal_numpy(tmp_path, seed):
    rng = np.random.default_rng(seed)
    channels, h, w_ = int(rng.integers(1, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20))
    model, w, b = conv_model(channels=channels, size=("H", "W"), seed=seed)
    m = runtime.load(save(model, tmp_path / "c.onnx"), providers="cpu")
    x = rng.normal(size=(int(rng.integers(1, 5)), channels, h, w_)).astype(np.float32)
    np.testing.assert_allclose(m.run(x)[0], conv_reference(x, w, b), atol=1e-4)


@pytest.mark.parametrize("seed", range(10))
def test_two_input_matmul_equals_numpy(seed):
    rng = np.random.default_rng(seed)
    m = runtime.load(matmul_model(k=6).SerializeToString(), providers="cpu")
    n = int(rng.integers(1, 6))
    a, b = rng.normal(size=(n, 4, 6)).astype(np.float32), rng.normal(size=(n, 6, 5)).astype(np.float32)
    expected = np.einsum("nij,njk->nik", a.astype(np.float64), b.astype(np.float64))
    np.testing.assert_allclose(m.run(a, b)[0], expected, atol=1e-4)


def test_provider_is_reported_and_logged_once(conv_path, caplog):
    with caplog.at_level(logging.INFO, logger="edgepipe.runtime"):
        model = runtime.load(conv_path[0], providers="cpu")
    assert model.providers == ["CPUExecutionProvider"]
    assert not model.on_cuda
    runs_on = [r for r in caplog.records if "runs on" in r.getMessage()]
    assert [r.getMessage() for r in runs_on] == ["model conv.onnx runs on CPUExecutionProvider"]
    assert runs_on[0].levelno == logging.INFO
    assert model.inputs[0].shape == ("N", 3, 32, 32)
    assert model.inputs[0].describe() == "x: float32 (N, 3, 32, 32)"
    assert model.meta == META


def test_call_uses_the_one_preprocessing(tmp_path):
    # Identity model: what it returns is exactly what the runtime fed it. Reference: OpenCV resize, BGR -> RGB,
    # / 255, HWC -> CHW, written here independently of runtime.preprocess.
    spec = PreprocessSpec((24, 40), resize="resize")
    meta = ModelMeta(task="classify", preprocess=spec, class_names=("a",))
    m = runtime.load(save(identity_model(props=to_metadata_props(meta)), tmp_path / "id.onnx"), providers="cpu")
    frames = [np.random.default_rng(i).integers(0, 256, (30 + i, 50, 3), dtype=np.uint8) for i in range(3)]
    outputs, transforms = m(frames)
    expected = np.stack([cv2.resize(f, (40, 24))[:, :, ::-1].transpose(2, 0, 1) / 255 for f in frames])
    np.testing.assert_allclose(outputs[0], expected, atol=1e-6)
    assert [t.src_size for t in transforms] == [(30, 50), (31, 50), (32, 50)]


def test_conv_through_call_equals_numpy(conv_path):
    path, w, b = conv_path
    model = runtime.load(path, providers="cpu")
    frames = [np.random.default_rng(i).integers(0, 256, (48, 64, 3), dtype=np.uint8) for i in range(2)]
    outputs, _ = model(frames)
    np.testing.assert_allclose(outputs[0], conv_reference(preprocess(frames, META.preprocess).batch, w, b), atol=1e-4)


def test_fp16_model_gets_fp16_input(tmp_path):
    model, w, b = conv_model(dtype=TensorProto.FLOAT16, props=to_metadata_props(META))
    m = runtime.load(save(model, tmp_path / "h.onnx"), providers="cpu")
    assert m.spec.dtype == "float16"
    x = np.random.default_rng(0).normal(size=(1, 3, 32, 32)).astype(np.float32)
    before = x.copy()
    out = m.run(x)[0]  # float32 in: cast once for the fp16 model
    assert out.dtype == np.float16
    np.testing.assert_array_equal(x, before)  # the caller's array is not touched
    np.testing.assert_allclose(out, conv_reference(x, w, b), atol=0.05, rtol=0.02)
    outputs, _ = m(np.zeros((10, 10, 3), np.uint8))  # the spec's dtype follows the input: fp16 batch
    assert outputs[0].dtype == np.float16


def test_non_contiguous_input_is_accepted(conv_path):
    path, w, b = conv_path
    m = runtime.load(path, providers="cpu")
    x = np.random.default_rng(1).normal(size=(2, 3, 32, 64)).astype(np.float32)[:, ::-1, :, ::2]
    np.testing.assert_allclose(m.run(x)[0], conv_reference(x, w, b), atol=1e-4)


def test_bytes_input(conv_path):
    m = runtime.load(conv_path[0].read_bytes(), providers="cpu")
    assert m.name == "<bytes>"
    assert m.run(np.zeros((1, 3, 32, 32), np.float32))[0].shape == (1, 4, 32, 32)


def test_model_without_metadata_still_runs_and_says_why(tmp_path):
    model, _, _ = conv_model(size=(8, 8))
    m = runtime.load(save(model, tmp_path / "bare.onnx"), providers="cpu")
    assert not m.has_meta
    assert m.run(np.zeros((1, 3, 8, 8), np.float32))[0].shape == (1, 4, 8, 8)
    with pytest.raises(ValueError, match=r"bare.onnx: model cannot be described: missing \['task', 'imgsz'\]"):
        _ = m.meta
    with pytest.raises(ValueError, match=r"bare.onnx: model cannot be described"):
        m(np.zeros((8, 8, 3), np.uint8))
    overridden = runtime.load(tmp_path / "bare.onnx", providers="cpu", overrides={"task": "classify", "imgsz": 8,
                                                                                 "names": ["x"]})
    assert overridden.meta.source == "options"


@pytest.mark.parametrize(
    ("shape", "props", "batch", "size", "expected"),
    [
        ((1, 3, 32, 32), None, 1, None, [(1, 3, 32, 32)]),  # all fixed
        (("N", 3, 32, 32), None, 4, None, [(4, 3, 32, 32)]),  # dynamic batch takes the batch
        (("N", 3, "H", "W"), None, 2, (8, 16), [(2, 3, 8, 16)]),  # dynamic size from the size argument
        (("N", 3, "H", "W"), META, 1, None, [(1, 3, 32, 32)]),  # ... else from the metadata
        (("N", 3, "H", "W"), META, 1, (5, 6), [(1, 3, 5, 6)]),  # the argument wins over the metadata
        (("N", "C", 7, 9), None, 1, None, [(1, 3, 7, 9)]),  # dynamic channels: 3 without metadata
        (("N", 10), None, 3, None, [(3, 10)]),  # not an image input
    ],
)
def test_input_shapes(shape, props, batch, size, expected):
    m = runtime.load(identity_model(shape, props=props and to_metadata_props(props)).SerializeToString(),
                     providers="cpu")
    assert m.input_shapes(batch, size) == expected


@pytest.mark.parametrize(
    "shape",
    [
        ("N", 3, "H", "W"),  # image size unknown, no metadata
        ("N", "L"),  # a dynamic non-image dim
    ],
)
def test_input_shapes_that_cannot_be_known(shape, caplog):
    with caplog.at_level(logging.DEBUG, logger="edgepipe.runtime"):
        m = runtime.load(identity_model(shape).SerializeToString(), providers="cpu")
    assert "no warm-up for <bytes>" in caplog.text  # load skips the warm-up instead of failing
    with pytest.raises(ValueError, match=r"has dynamic dims: give its size"):
        m.input_shapes(1)


def test_warmup_runs_with_metadata_size(tmp_path, caplog):
    model, _, _ = conv_model(size=("H", "W"), props=to_metadata_props(META))
    with caplog.at_level(logging.DEBUG, logger="edgepipe.runtime"):
        runtime.load(save(model, tmp_path / "dyn.onnx"), providers="cpu", warmup=3)
    assert "warm-up: 3 run(s)" in caplog.text


@NO_GPU
def test_cuda_without_gpu_is_an_error_unless_fallback_allowed(conv_path, caplog):
    path, _, _ = conv_path
    with pytest.raises(ValueError, match=r"CUDAExecutionProvider was requested but could not run here"):
        runtime.load(path, providers="cuda")
    with pytest.raises(ValueError, match=r"could not run here"):  # an explicit list asks for CUDA first too
        runtime.load(path, providers=["cuda", "cpu"])
    with caplog.at_level(logging.WARNING, logger="edgepipe.runtime"):
        model = runtime.load(path, providers="cuda", allow_fallback=True)
    assert model.providers[0] == "CPUExecutionProvider"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "conv.onnx: CUDAExecutionProvider was requested but could not run here; CPUExecutionProvider runs the " \
           "model" in warnings[0].getMessage()
    assert runtime.load(path, providers="auto").providers[0] == "CPUExecutionProvider"


def test_cuda_missing_from_a_cpu_build(conv_path, monkeypatch, caplog):
    # onnxruntime (CPU build, e.g. on a Mac) lists no CUDA provider at all.
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(ValueError, match=r"provider 'cuda' is not available in this onnxruntime build .* "
                                         r"install onnxruntime-gpu"):
        runtime.load(conv_path[0], providers="cuda")
    with caplog.at_level(logging.WARNING, logger="edgepipe.runtime"):
        model = runtime.load(conv_path[0], providers="cuda", allow_fallback=True)
    assert model.providers == ["CPUExecutionProvider"]
    assert "CUDAExecutionProvider is not in this onnxruntime build" in caplog.text
    assert runtime.load(conv_path[0], providers="auto").providers == ["CPUExecutionProvider"]


@pytest.mark.gpu
@GPU
def test_cuda_matches_numpy_and_cpu(conv_path, tmp_path):
    path, w, b = conv_path
    gpu, cpu = runtime.load(path, providers="cuda"), runtime.load(path, providers="cpu")
    assert gpu.on_cuda and gpu.providers[0] == "CUDAExecutionProvider"
    for n in (1, 4, 2):  # batch sizes change between runs
        x = np.random.default_rng(n).normal(size=(n, 3, 32, 32)).astype(np.float32)
        np.testing.assert_allclose(gpu.run(x)[0], conv_reference(x, w, b), atol=1e-3)
        np.testing.assert_allclose(gpu.run(x)[0], cpu.run(x)[0], atol=1e-3)
    mm = runtime.load(matmul_model().SerializeToString(), providers="cuda", gpu_mem_limit=2**28,
                      cudnn_search="exhaustive")
    a, c = np.ones((2, 4, 8), np.float32), np.ones((2, 8, 5), np.float32)
    np.testing.assert_allclose(mm.run(a, c)[0], np.full((2, 4, 5), 8.0), atol=1e-4)
    half, _, _ = conv_model(dtype=TensorProto.FLOAT16, props=to_metadata_props(META))
    h = runtime.load(save(half, tmp_path / "h.onnx"), providers="cuda")
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(h.run(x)[0], conv_reference(x, w, b), atol=0.05, rtol=0.02)


@pytest.mark.parametrize("graph_opt", ["disable", "basic", "extended", "all"])
def test_graph_optimization_levels_give_the_same_outputs(conv_path, tmp_path, graph_opt):
    path, w, b = conv_path
    optimized = tmp_path / f"opt-{graph_opt}.onnx"
    model = runtime.load(path, providers=["cpu"], intra_op_threads=1, inter_op_threads=1, graph_opt=graph_opt,
                         optimized_path=optimized, warmup=2)
    assert optimized.is_file()
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(model.run(x)[0], conv_reference(x, w, b), atol=1e-4)
    reloaded = runtime.load(optimized, providers="cpu")  # the saved optimized graph runs and computes the same
    np.testing.assert_allclose(reloaded.run(x)[0], conv_reference(x, w, b), atol=1e-4)




@pytest.mark.parametrize("threads", [1, 2])
def test_dynamic_blocks_on_and_outputs_unchanged(conv_path, threads):
    path, w, b = conv_path
    model = runtime.load(path, providers="cpu", intra_op_threads=threads)
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.dynamic_block_base") == str(runtime.session.DYNAMIC_BLOCK_BASE)
    x = np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(model.run(x)[0], conv_reference(x, w, b), atol=1e-4)
