"""`edgepipe info`, `bench` and `select` on tiny ONNX graphs."""

import json
from dataclasses import replace

import pytest

from apps.cli import main
from runtime.metadata import ModelMeta, to_metadata_props
from runtime.preprocess import PreprocessSpec
from tests.onnx_graphs import conv_model, save

META = ModelMeta(task="classify", preprocess=PreprocessSpec((32, 32), resize="resize"), class_names=("a", "b"))


@pytest.fixture
def models(tmp_path):
    small = save(conv_model(props=to_metadata_props(replace(META, metrics={"accuracy": 0.90})))[0],
                 tmp_path / "small.onnx")
    big = save(conv_model(size=("H", "W"), props=to_metadata_props(
        replace(META, preprocess=PreprocessSpec((256, 256), resize="resize"), metrics={"accuracy": 0.97})))[0],
        tmp_path / "big.onnx")
    bare = save(conv_model(size=(16, 16))[0], tmp_path / "bare.onnx")
    return small, big, bare


def test_info(models, capsys):
    small, _, bare = models
    assert main(["info", str(small), "--json", "--provider", "cpu"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["inputs"] == ["x: float32 (N, 3, 32, 32)"]
    assert info["provider_chosen"] == "CPUExecutionProvider"
    assert info["opsets"] == {"ai.onnx": 17}
    assert info["metadata"]["class_names"] == ["a", "b"]
    assert main(["info", str(bare), "--provider", "cpu"]) == 0
    assert "none usable" in capsys.readouterr().out


def test_bench_json_and_compare(models, capsys):
    small, big, _ = models
    args = ["bench", str(big), "--compare", str(big), "--batch", "1", "2", "--runs", "5", "--warmup", "1",
            "--provider", "cpu", "--json", "--imgsz", "64", "64"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert [(r["batch"], r["runs"]) for r in out["results"]] == [(1, 5), (1, 5), (2, 5), (2, 5)]
    assert all(r["p50_ms"] > 0 and r["p90_ms"] >= r["p50_ms"] for r in out["results"])
    assert main(["bench", str(small), "--runs", "5", "--overhead", "--provider", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "bare session.run" in text and "runtime overhead" in text


def test_bench_dynamic_size_without_imgsz_is_a_clear_error(models, capsys, tmp_path):
    bare = save(conv_model(size=("H", "W"))[0], tmp_path / "dyn.onnx")
    assert main(["bench", str(bare), "--runs", "2", "--provider", "cpu"]) == 2
    assert "has a dynamic size: give --imgsz H W" in capsys.readouterr().err


def test_select_picks_the_most_accurate_within_the_bound(models, capsys):
    small, big, bare = models
    assert main(["select", str(small), str(big), str(bare), "--latency-ms", "1000", "--runs", "3", "--json",
                 "--provider", "cpu"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chosen"] == str(big)  # both meet a generous bound: the more accurate wins
    rows = {r["model"]: r for r in out["rows"]}
    assert rows[str(bare)]["accuracy"] is None
    # A bound that nothing meets: a one-line error that says what to do.
    assert main(["select", str(small), str(big), "--latency-ms", "0.000001", "--runs", "3", "--provider", "cpu"]) == 2
    assert "no model meets p50 <= 1e-06 ms" in capsys.readouterr().err
