"""ONNX export: checker, metadata round trip, parity, fp16, int8, NMS in the graph, the export service, bad input."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgepipe import runtime
from edgepipe.apps.cli import main
from edgepipe.export.onnx.export import export_onnx, load_source
from edgepipe.export.onnx.nms_graph import E2E_OUTPUT, course_postprocess_graph
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe
from edgepipe.postprocess.boxes import Transform
from edgepipe.postprocess.decoders import decode_course
from edgepipe.postprocess.nms_output import NMS_HEAD
from edgepipe.runtime.preprocessing import preprocess
from edgepipe.runtime.variants import fp16_model, head_nodes, int8_model, output_difference, save_model, stem_nodes


@pytest.fixture(scope="module")
def lenet_ckpt(tmp_path_factory):
    out = tmp_path_factory.mktemp("lenet")
    fit(make_recipe("lenet5", tiny=True), out, progress=False)
    return out / "best.pt"


@pytest.mark.parametrize("name", ["lenet5", "yolo-small", "resnet18", "facenet", "deep"])
def test_zoo_models_export_with_metadata_and_parity(tmp_path, name):
    torch.manual_seed(0)
    source = load_source(name, (128, 128) if name == "resnet18" else None, samples=4)
    result = export_onnx(source, tmp_path / f"{name}.onnx")
    assert result.max_abs_diff <= 1e-4
    proto = onnx.load(str(result.path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # dynamic batch axis
    model = runtime.load(result.path, providers="cpu")
    assert model.meta.task == source.meta.task and model.meta.model_name == name
    assert model.meta.preprocess == source.meta.preprocess
    assert model.meta.exported_at and model.meta.version
    outputs, _ = model(source.frames)
    with torch.no_grad():
        x = torch.from_numpy(preprocess(source.frames, source.meta.preprocess).batch)
        np.testing.assert_allclose(outputs[0], source.model(x).numpy(), atol=1e-4)


def test_checkpoint_export_keeps_training_metrics(tmp_path, lenet_ckpt):
    result = export_onnx(load_source(lenet_ckpt), tmp_path / "lenet.onnx")
    meta = runtime.load(result.path, providers="cpu").meta
    assert set(meta.metrics) >= {"accuracy", "dev_error"} and meta.class_names == tuple("0123456789")


def test_fp16_parity_and_size(tmp_path):
    torch.manual_seed(0)
    source = load_source("yolo-small", samples=4)
    fp32 = export_onnx(source, tmp_path / "y.onnx").path
    half = save_model(fp16_model(onnx.load(str(fp32))), tmp_path / "y.fp16.onnx")
    assert output_difference(fp32, half, source.frames)[1] < 1e-2
    assert 0.4 < half.stat().st_size / fp32.stat().st_size < 0.6
    assert runtime.load(half, providers="cpu").spec.dtype == "float16"


def test_int8_keeps_the_head_in_fp32_and_runs(tmp_path):
    torch.manual_seed(0)
    source = load_source("yolo-small", samples=8)
    fp32 = export_onnx(source, tmp_path / "y.onnx").path
    head = head_nodes(onnx.load(str(fp32)))
    assert head and onnx.load(str(fp32)).graph.node[-1].name in head
    calib = preprocess(source.frames, source.meta.preprocess).batch
    q = onnx.load(str(save_model(int8_model(fp32, calib, progress=False), tmp_path / "y.int8.onnx")))
    ops = {n.op_type for n in q.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    consumers = {i: n for n in q.graph.node for i in n.input}
    last_conv = [n for n in q.graph.node if n.op_type == "Conv"][-1]
    assert consumers.get(last_conv.output[0]) is None or consumers[last_conv.output[0]].op_type != "QuantizeLinear"
    assert {p.key for p in q.metadata_props} == {"edgepipe"}
    model = runtime.load(tmp_path / "y.int8.onnx", providers="cpu")
    assert model(source.frames)[0][0].shape == (8, 24, 10, 10)
    stem = stem_nodes(onnx.load(str(fp32)))
    assert stem == [onnx.load(str(fp32)).graph.node[0].name]  # the conv on the input image
    first_conv = next(n for n in q.graph.node if n.op_type == "Conv")
    weights = {w.name: w for w in q.graph.initializer}
    assert first_conv.input[0] == q.graph.input[0].name  # fed the float image: not quantized
    assert weights[first_conv.input[1]].data_type == onnx.TensorProto.FLOAT  # and its weights stay fp32


def detector_output(rng, batch=3, a=3, c=3, s=10):
    """A trained-looking raw course-head output: a few confident objects (with weaker duplicates in the
    neighbouring anchor for NMS to remove) over a background of low objectness. (B, A*(5+C), S, S)."""
    raw = rng.normal(0, 1, (batch, a, 5 + c, s, s)).astype(np.float32)
    raw[:, :, 4] = rng.normal(-6, 1, (batch, a, s, s))
    for b in range(batch):
        for _ in range(rng.integers(1, 8)):
            k, row, col = rng.integers(0, a), rng.integers(0, s), rng.integers(0, s)
            raw[b, k, 4, row, col] = rng.uniform(1, 5)
            raw[b, k, 5 + rng.integers(0, c), row, col] += 4
            raw[b, (k + 1) % a, :, row, col] = raw[b, k, :, row, col] + rng.normal(0, 0.2, 5 + c)
    return raw.reshape(batch, a * (5 + c), s, s)


@pytest.mark.parametrize("seed", range(10))
def test_nms_graph_equals_python_postprocess(seed):
    rng = np.random.default_rng(seed)
    anchors = np.array([[1.0, 1.2], [2.5, 2.0], [4.0, 5.0]])
    raw = detector_output(rng)
    post = course_postprocess_graph(anchors, 3, (10, 10), (160, 160), 0.25, 0.45, 300, 17)
    det = ort.InferenceSession(post.SerializeToString()).run(None, {"raw": raw})[0]
    expected = decode_course(raw, [Transform.identity((160, 160))] * 3, anchors, 0.25, 0.45, 300)
    assert sum(len(d) for d in expected) >= 3
    for b, want in enumerate(expected):
        got = det[det[:, 0] == b]
        got = got[np.argsort(-got[:, 5], kind="stable")]
        np.testing.assert_allclose(np.clip(got[:, 1:5], 0, 160), want.xyxy, atol=1e-4)  # same boxes, same order
        np.testing.assert_allclose(got[:, 5], want.scores, atol=1e-5)
        np.testing.assert_array_equal(got[:, 6].astype(int), want.class_ids)


def test_end_to_end_model_is_the_detector_then_the_nms_graph(tmp_path):
    torch.manual_seed(0)
    source = load_source("yolo-small", samples=4)
    plain = export_onnx(source, tmp_path / "p.onnx").path
    e2e = export_onnx(source, tmp_path / "e.onnx", nms=True, conf=0.001, iou=0.45, max_det=300).path
    assert [o.name for o in onnx.load(str(e2e)).graph.output] == [E2E_OUTPUT]
    meta = runtime.load(e2e, providers="cpu").meta
    assert (meta.head, meta.anchors, meta.nms) == (NMS_HEAD, (), {"conf": 0.001, "iou": 0.45, "max_det": 300})
    batch = preprocess(source.frames, source.meta.preprocess).batch
    raw = ort.InferenceSession(str(plain)).run(None, {"images": batch})[0]
    m = source.model
    post = course_postprocess_graph(np.array(m.anchors), 3, m.grid_size, m.input_size, 0.001, 0.45, 300, 17)
    expected = ort.InferenceSession(post.SerializeToString()).run(None, {"raw": raw})[0]
    got = ort.InferenceSession(str(e2e)).run(None, {"images": batch})[0]
    assert len(got) > 0
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lenet6", "--out", "x.onnx"], "model must be a checkpoint file or one of"),  # unknown name
        (["missing.pt", "--out", "x.onnx"], "checkpoint not found"),  # missing file
        (["lenet5", "--out", "x.onnx", "--opset", "7"], r"opset must be in \[13, 21\], but got 7"),  # old opset
        (["lenet5", "--out", "x.txt"], r"output must be an .onnx path"),  # not .onnx
        (["lenet5", "--out", "x.onnx", "--nms"], r"--nms needs a course YOLO detector"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["export", *args]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    import re

    assert re.search(message, err)
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob("*.tmp"))


def test_foreign_checkpoint_and_failed_parity(tmp_path, lenet_ckpt):
    ckpt = torch.load(lenet_ckpt, weights_only=True)
    ckpt["model"] = "softmax"  # weights of another architecture
    torch.save(ckpt, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="checkpoint does not fit model 'softmax'"):
        load_source(tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match=r"parity check failed.*nothing was written"):
        export_onnx(load_source("lenet5"), tmp_path / "strict.onnx", tolerance=-1.0)
    assert not list(tmp_path.glob("*.onnx"))
