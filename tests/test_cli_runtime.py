"""`edgepipe info`, `bench` and `select` on tiny ONNX graphs, through apps.cli.main."""

import json
import re
import sys
from dataclasses import replace

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edgepipe.apps.bench import Candidate, choose, metric_key
from edgepipe.apps.cli import main
from edgepipe.runtime.metadata import ModelMeta, to_metadata_props
from edgepipe.runtime.preprocessing import PreprocessSpec
from edgepipe.runtime.session import cuda_device_present
from tests.onnx_graphs import conv_model, matmul_model, save

META = ModelMeta(task="classify", preprocess=PreprocessSpec((32, 32), resize="resize"), class_names=("a", "b"))


def described(measured: dict[str, float], size: tuple[int, int] = (32, 32)) -> dict[str, str]:
    """metadata_props of a classifier with this evaluation (measured on the file) and input size."""
    return to_metadata_props(replace(META, preprocess=PreprocessSpec(size, resize="resize"),
                                     evaluation={**measured, "data": "digits test split"}))


@pytest.fixture
def models(tmp_path):
    small = save(conv_model(props=described({"accuracy": 0.90}))[0], tmp_path / "small.onnx")
    big = save(conv_model(size=("H", "W"), props=described({"accuracy": 0.97}, (64, 64)))[0], tmp_path / "big.onnx")
    bare = save(conv_model(size=(16, 16))[0], tmp_path / "bare.onnx")
    return small, big, bare


def test_info_json(models, capsys):
    small, _, _ = models
    assert main(["info", str(small), "--json", "--provider", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file"] == str(small)
    assert info["size_mb"] == round(small.stat().st_size / 2**20, 3)
    assert info["inputs"] == ["x: float32 (N, 3, 32, 32)"]
    assert info["outputs"] == ["y: float32 (N, 4, 32, 32)"]
    assert info["opsets"] == {"ai.onnx": 17}
    assert info["ir_version"] == 9
    assert info["providers_built_in"] == ort.get_available_providers()
    assert "CPUExecutionProvider" in info["providers_usable"]  # the CPU always runs; CUDA only with a GPU
    assert ("CUDAExecutionProvider" in info["providers_usable"]) == cuda_device_present()
    assert info["provider_chosen"] == "CPUExecutionProvider"
    assert info["metadata"]["class_names"] == ["a", "b"]
    assert info["metadata"]["evaluation"] == {"accuracy": 0.9, "data": "digits test split"}
    assert info["metadata"]["preprocess"]["input_size"] == [32, 32]


def test_info_text_for_a_model_without_metadata(models, capsys):
    _, _, bare = models
    assert main(["info", str(bare), "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "x: float32 (N, 3, 16, 16)" in out
    assert re.search(r"^provider_chosen +CPUExecutionProvider$", out, re.MULTILINE)
    assert "none usable (bare.onnx: model cannot be described" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "nowhere.onnx"], "edgepipe info: error: model file not found: nowhere.onnx"),  # missing file
        (["info", "BAD", "--provider", "tpu"], "providers must be 'auto', 'cuda', 'cpu'"),  # no such provider
        (["bench", "nowhere.onnx"], "edgepipe bench: error: model file not found"),  # missing file
        (["select", "nowhere.onnx", "--latency-ms", "5"], "edgepipe select: error: model file not found"),
    ],
)
def test_errors_are_one_line(models, capsys, argv, message):
    argv = [str(models[0]) if a == "BAD" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_bench_json_compare_and_ratios(models, capsys):
    small, big, _ = models
    args = ["bench", str(big), "--compare", str(small), "--batch", "1", "2", "--runs", "5", "--warmup", "1",
            "--provider", "cpu", "--json", "--imgsz", "32", "32"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["provider"] == "CPUExecutionProvider"
    assert [(r["name"], r["batch"], r["runs"]) for r in out["results"]] == [
        ("big.onnx", 1, 5), ("compare:small.onnx", 1, 5), ("big.onnx", 2, 5), ("compare:small.onnx", 2, 5)]
    for first, other in (out["results"][0:2], out["results"][2:4]):
        assert first["p50_ratio_to_first"] == 1.0
        assert other["p50_ratio_to_first"] == pytest.approx(other["p50_ms"] / first["p50_ms"], rel=1e-2, abs=1e-3)
    for r in out["results"]:
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch"] / r["p50_ms"] * 1e3, rel=1e-2)
    assert "overhead" not in out


def test_bench_preprocess_measures_the_runtime_overhead(models, capsys, tmp_path):
    small, _, _ = models
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    assert main(["bench", str(small), "--runs", "5", "--preprocess", str(image), "--provider", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "bare session.run" in captured.out and "model(images)" in captured.out
    assert "runtime overhead, model(images) (preprocess + checks) over bare session.run: " in captured.out
    assert "5/5" in captured.err  # the progress bar goes to stderr
    assert main(["bench", str(small), "--runs", "3", "--batch", "2", "--preprocess", str(image), "--provider", "cpu",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in out["results"]}
    assert set(rows) == {"small.onnx", "bare session.run", "model(images)"}
    expected = rows["model(images)"]["p50_ms"] / rows["bare session.run"]["p50_ms"] - 1
    assert out["overhead"] == [{"batch": 2, "full_over_bare": pytest.approx(expected, rel=1e-2, abs=1e-3)}]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preprocess", "MISSING"], "none.png not found"),  # no image there
        (["--preprocess", "TEXT"], "is not an image OpenCV can read"),  # not an image
        (["--batch", "0"], "--batch sizes must be >= 1, but got 0"),  # no batch
        (["--runs", "0"], "runs must be >= 1, but got 0"),  # nothing to time
    ],
)
def test_bench_bad_options(models, capsys, tmp_path, extra, message):
    (tmp_path / "notes.txt").write_text("not an image")
    paths = {"MISSING": str(tmp_path / "none.png"), "TEXT": str(tmp_path / "notes.txt")}
    argv = ["bench", str(models[0]), "--runs", "2", "--provider", "cpu", *[paths.get(a, a) for a in extra]]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("graph", "extra", "message"),
    [
        (conv_model(size=("H", "W"))[0], [], "has dynamic dims: give its size (e.g. bench --imgsz H W)"),  # no size
        (conv_model(batch=1)[0], ["--batch", "2"], "has a fixed batch of 1 (x: float32 (1, 3, 32, 32)): --batch must "
                                                   "be 1"),  # batch over a fixed batch dimension
        (conv_model(size=(16, 16))[0], ["--preprocess", "IMAGE"], "model cannot be described"),  # no spec to use
        (matmul_model(), ["--preprocess", "IMAGE"], "--preprocess times one image input, but m.onnx has 2 inputs"),
    ],
)
def test_bench_models_it_cannot_time(tmp_path, capsys, graph, extra, message):
    path = save(graph, tmp_path / "m.onnx")
    cv2.imwrite(str(tmp_path / "i.png"), np.zeros((8, 8, 3), np.uint8))
    extra = [str(tmp_path / "i.png") if a == "IMAGE" else a for a in extra]
    assert main(["bench", str(path), "--runs", "2", "--provider", "cpu", *extra]) == 2
    assert message in capsys.readouterr().err


def test_bench_two_input_model(tmp_path, capsys):
    path = save(matmul_model(), tmp_path / "mm.onnx")
    assert main(["bench", str(path), "--runs", "3", "--batch", "4", "--provider", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][0]["batch"] == 4


def test_bench_io_binding_rows(tmp_path, capsys):
    path = save(matmul_model(), tmp_path / "mm.onnx")
    assert main(["bench", str(path), "--runs", "3", "--batch", "1", "4", "--provider", "cpu", "--io-binding",
                 "--json"]) == 0
    rows = [(r["name"], r["batch"]) for r in json.loads(capsys.readouterr().out)["results"]]
    assert rows == [(name, batch) for batch in (1, 4) for name in
                    ("mm.onnx", "io binding, copied in and out", "io binding, resident on device")]


def test_bench_beside_pytorch(tmp_path, capsys):
    pytest.importorskip("torch")
    path = save(conv_model(channels=1)[0], tmp_path / "gray.onnx")  # LeNet-5's input: (N, 1, 32, 32)
    assert main(["bench", str(path), "--torch", "lenet5", "--runs", "3", "--batch", "2", "--provider", "cpu",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert [r["name"] for r in rows] == ["gray.onnx", "torch:lenet5"]
    assert rows[1]["p50_ms"] > 0


def test_bench_beside_a_pytorch_checkpoint(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from edgepipe.export.models import build

    checkpoint = tmp_path / "best.pt"
    torch.save({"model": "lenet5", "build_kwargs": {}, "state_dict": build("lenet5").state_dict(), "meta": {}},
               checkpoint)
    path = save(conv_model(channels=1)[0], tmp_path / "gray.onnx")
    assert main(["bench", str(path), "--torch", str(checkpoint), "--runs", "2", "--provider", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["results"][1]["name"] == f"torch:{checkpoint}"


@pytest.mark.parametrize(
    ("source", "channels", "message"),
    [
        ("nosuchnet", 1, "model must be one of"),  # not in the zoo
        ("lenet5", 3, "--torch lenet5 does not take the ONNX model's inputs [(1, 3, 32, 32)]"),  # other input
        ("missing.pt", 1, "checkpoint not found: missing.pt"),  # no checkpoint there
    ],
)
def test_bench_torch_errors(tmp_path, capsys, source, channels, message):
    pytest.importorskip("torch")
    path = save(conv_model(channels=channels)[0], tmp_path / "m.onnx")
    assert main(["bench", str(path), "--torch", source, "--runs", "2", "--provider", "cpu"]) == 2
    assert message in capsys.readouterr().err


def test_bench_torch_without_the_export_package(models, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "edgepipe.export.models", None)  # as on an edge install: import fails
    assert main(["bench", str(models[0]), "--torch", "lenet5", "--runs", "2", "--provider", "cpu"]) == 2
    assert "--torch needs PyTorch and edgepipe's export package (pip install 'edgepipe[train]')" in \
        capsys.readouterr().err


def c(model: str, p50: float, accuracy: float | None, bound: float = 10.0) -> Candidate:
    return Candidate(model, p50, accuracy, p50 <= bound)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        ([c("a", 5, 0.8), c("b", 8, 0.9)], "b"),  # both meet the bound: the more accurate
        ([c("a", 5, 0.8), c("b", 12, 0.9)], "a"),  # the more accurate is too slow
        ([c("a", 10.0, 0.8), c("b", 10.001, 0.9)], "a"),  # exactly at the bound meets it, just above does not
        ([c("a", 9, 0.9), c("b", 4, 0.9)], "b"),  # equal accuracy: the faster
        ([c("a", 4, 0.9), c("b", 4, 0.9)], "a"),  # complete tie: the first listed
        ([c("a", 1, None), c("b", 9, 0.5)], "b"),  # no metric: never chosen
        ([c("a", 11, 0.9), c("b", 12, 0.8)], None),  # none meets the bound
        ([c("a", 1, None)], None),  # none has a metric
        ([], None),  # nothing to choose from
        ([c("a", 3, 0.7)], "a"),  # one model
    ],
)
def test_choose(candidates, expected):
    chosen = choose(candidates)
    assert (chosen and chosen.model) == expected


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ([{"accuracy": 0.9}, {"accuracy": 0.8}], "accuracy"),  # classifiers
        ([{"map50": 0.6, "accuracy": 0.9}], "map50"),  # both keys: map50 wins
        ([{"accuracy": 0.9}, {"map50": 0.6}], "map50"),  # mixed: one key for all, map50 first
        ([{"auc": 0.99}, {}], "auc"),  # verifiers
        ([{"loss": 0.1}, {}], ""),  # no accuracy metric
        ([], ""),  # no models
    ],
)
def test_metric_key(metrics, expected):
    assert metric_key(metrics) == expected


def test_select_picks_the_most_accurate_within_the_bound(models, capsys):
    small, big, bare = models
    assert main(["select", str(small), str(big), str(bare), "--latency-ms", "1000", "--runs", "3", "--json",
                 "--provider", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chosen"] == str(big)  # all meet a generous bound: the most accurate wins
    assert out["metric"] == "accuracy"
    rows = {r["model"]: r for r in out["candidates"]}
    assert rows[str(bare)]["accuracy"] is None
    assert rows[str(small)]["accuracy"] == 0.9
    assert all(r["meets_latency"] for r in rows.values())


def test_select_text_table(models, capsys):
    small, big, _ = models
    assert main(["select", str(small), str(big), "--latency-ms", "1000", "--runs", "2", "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "satisficing: p50 latency <= 1000.0 ms (batch 1, CPUExecutionProvider); optimizing: accuracy" in out
    assert f"chosen: {big} (accuracy 0.9700" in out


def test_select_judges_all_models_by_one_metric(tmp_path, capsys):
    det = save(conv_model(props=described({"map50": 0.5}))[0], tmp_path / "det.onnx")
    cls = save(conv_model(props=described({"accuracy": 0.99}))[0], tmp_path / "cls.onnx")
    assert main(["select", str(cls), str(det), "--latency-ms", "1000", "--runs", "2", "--json",
                 "--provider", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["metric"], out["chosen"]) == ("map50", str(det))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--latency-ms", "0"], "--latency-ms must be > 0, but got 0.0"),  # not a bound
    ],
)
def test_select_errors(models, capsys, extra, message):
    small, big, _ = models
    assert main(["select", str(small), str(big), "--runs", "2", "--provider", "cpu", *extra]) == 2
    assert message in capsys.readouterr().err


def test_select_without_metrics_is_an_error(models, capsys):
    _, _, bare = models
    assert main(["select", str(bare), "--latency-ms", "1000", "--runs", "2", "--provider", "cpu"]) == 2
    assert "no model carries a metric ('map50', 'accuracy', 'auc') measured on it" in capsys.readouterr().err


def test_select_answers_1_when_no_model_meets_the_bound(models, capsys):
    small, big, _ = models
    assert main(["select", str(small), str(big), "--latency-ms", "0.000001", "--runs", "2", "--provider", "cpu"]) == 1
    out, err = capsys.readouterr()
    assert "chosen:" not in out and err.strip() == ("edgepipe select: no model meets p50 <= 1e-06 ms and carries a "
                                                    "measured accuracy: relax the bound, or export a smaller or "
                                                    "quantized variant")
