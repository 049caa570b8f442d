"""onnxruntime sessions on tiny graphs: outputs against numpy, providers reported, clear errors for bad input."""

import logging

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from edgepipe import runtime
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.metadata import ModelMeta, to_metadata_props
from edgepipe.runtime.preprocessing import PreprocessSpec, preprocess
from edgepipe.runtime.session import cuda_device_present
from tests.onnx_graphs import IR_VERSION, conv_model, conv_reference, identity_model, matmul_model, save

META = ModelMeta(task="classify", preprocess=PreprocessSpec((32, 32), resize="resize"), class_names=("a", "b"))
NO_GPU = pytest.mark.skipif(cuda_device_present(), reason="checks the behaviour of a machine without a GPU")
GPU = pytest.mark.skipif(
    not cuda_device_present() or "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="needs an NVIDIA GPU and onnxruntime-gpu (CI has no GPU)",
)


@pytest.fixture
def conv_path(tmp_path):
    model, w, b = conv_model(props=to_metadata_props(META))
    return save(model, tmp_path / "conv.onnx"), w, b


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
