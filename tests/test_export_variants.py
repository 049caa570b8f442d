"""`edgepipe export` variants: each measured by eval's evaluator, written only within its budget, the report, the file
permissions; on LeNet-5 (seconds) and on the trained small YOLO (tests/assets/yolo-small.pt)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from edgepipe import runtime
from edgepipe.apps.cli import main
from edgepipe.export.data.detection import DatasetConfig, split_scenes
from edgepipe.export.evaluate import evaluate
from edgepipe.export.onnx import pipeline
from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import EvalOptions, ExportOptions
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe
from edgepipe.runtime.variants import int8_model

ASSETS = Path(__file__).resolve().parent / "assets"
YOLO_CKPT = ASSETS / "yolo-small.pt"


def usual_mode() -> int:
    """What open() gives a new file here: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@pytest.fixture(scope="module")
def lenet(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lenet")
    fit(make_recipe("lenet5", tiny=True), out, progress=False)
    return out / "best.pt"


def test_every_variant_carries_the_accuracy_measured_on_it(tmp_path, lenet):
    options = ExportOptions(lenet, tmp_path / "l.onnx", fp16=True, int8=True, calib=8, uint8_input=True,
                            bench_runs=5, progress=False, max_drop=1.0)
    report = export_model(options)
    assert [(f.kind, f.path.name, f.status) for f in report.files] == [
        ("fp32", "l.onnx", "written"), ("fp16", "l.fp16.onnx", "written"), ("int8", "l.int8.onnx", "written"),
        ("uint8", "l.uint8.onnx", "written")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f.path.name for f in report.files] + ["l.report.json", "l.report.md"])  # nothing else, no temporary file
    reference = None
    for f in report.files:
        assert stat.S_IMODE(f.path.stat().st_mode) == usual_mode()  # not mkstemp's 0600
        assert f.size_bytes == f.path.stat().st_size and f.p50_ms > 0
        meta = runtime.load(f.path, providers="cpu").meta
        independent = evaluate(EvalOptions(f.path, split="test", progress=False))  # eval, on the written file
        reference = reference if reference is not None else independent["accuracy"]
        assert meta.evaluation["metric"] == f.metric == "accuracy"
        assert meta.evaluation["accuracy"] == pytest.approx(independent["accuracy"], abs=1e-6) == f.value
        assert meta.evaluation["drop"] == pytest.approx(reference - f.value, abs=1e-6)
        assert meta.evaluation["data"] == "digits test split" and meta.evaluation["images"] == 270
        assert meta.evaluation["variant"] == f.kind
    saved = json.loads((tmp_path / "l.report.json").read_text())
    assert [(r["kind"], r["status"]) for r in saved["files"]] == [
        (f.kind, "written") for f in report.files]
    markdown = (tmp_path / "l.report.md").read_text()
    assert all(f"| {f.kind} | {f.path.name} |" in markdown for f in report.files)


def test_uint8_input_equals_the_float_file(tmp_path, lenet):
    report = export_model(ExportOptions(lenet, tmp_path / "l.onnx", uint8_input=True, bench_runs=2, progress=False))
    float_model = runtime.load(tmp_path / "l.onnx", providers="cpu")
    frames_model = runtime.load(tmp_path / "l.uint8.onnx", providers="cpu")
    assert frames_model.meta.preprocess.dtype == "uint8" and frames_model.spec.dtype == "uint8"
    assert frames_model.inputs[0].describe() == "images: uint8 (batch, 32, 32, 1)"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (48, 40, 3), dtype=np.uint8) for _ in range(6)]  # BGR, resized by the runtime
    batch = runtime.preprocess(frames, frames_model.spec).batch
    assert batch.dtype == np.uint8 and batch.shape == (6, 32, 32, 1)
    want = float_model(frames)[0][0]
    np.testing.assert_allclose(frames_model.run(batch)[0], want, atol=1e-5)
    assert report.files[1].parity <= ExportOptions.uint8_tolerance


def gray_calibrated_head_quantized(src, calibration, progress=True):
    """The deliberately broken int8: head quantized too, calibrated on flat gray frames instead of the data."""
    return int8_model(src, np.full_like(calibration[:4], 114 / 255), keep_head_fp32=False, progress=False)


@pytest.mark.slow
def test_a_variant_over_its_budget_is_refused_with_its_numbers(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "int8_model", gray_calibrated_head_quantized)
    args = ["export", str(YOLO_CKPT), "--out", str(tmp_path / "y.onnx"), "--int8", "--calib", "4",
            "--bench-runs", "3", "--quiet"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert not (tmp_path / "y.int8.onnx").exists() and (tmp_path / "y.onnx").exists()
    saved = {f["kind"]: f for f in json.loads((tmp_path / "y.report.json").read_text())["files"]}
    int8 = saved["int8"]
    assert int8["status"] == "refused" and int8["drop"] > ExportOptions.max_drop
    line = f"edgepipe export: int8 not written: mAP@0.5 {int8['value']:.4f} is {int8['drop']:.4f} below fp32's " \
           f"{int8['reference']:.4f} (budget 0.01)"
    assert line in captured.err
    assert "refused" in captured.out
    assert main([*args, "--keep-failed"]) == 0  # written anyway, marked
    assert runtime.load(tmp_path / "y.int8.onnx", providers="cpu").meta.evaluation["within_budget"] is False


def detect_jsonl(model: Path, source: Path, out: Path) -> list[dict]:
    assert main(["detect", "--model", str(model), "--source", str(source), "--provider", "cpu", "--no-show",
                 "--jsonl", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.slow
def test_every_file_export_writes_runs_in_detect_and_eval(tmp_path, capsys):
    """The issue's first test: every variant of the trained small YOLO, written, runs in the commands."""
    out = tmp_path / "yolo.onnx"
    assert main(["export", str(YOLO_CKPT), "--out", str(out), "--fp16", "--int8", "--nms", "--uint8-input",
                 "--bench-runs", "10", "--calib", "16"]) == 0
    printed = capsys.readouterr().out
    report = json.loads(out.with_suffix(".report.json").read_text())
    kinds = [f["kind"] for f in report["files"]]
    assert kinds == ["fp32", "fp16", "int8", "nms", "uint8"]
    assert all(f["status"] == "written" for f in report["files"])
    rows = [line.split() for line in printed.splitlines()]
    assert [r[:2] for r in rows if r and r[0] in kinds] == [[f["kind"], Path(f["path"]).name] for f in report["files"]]
    assert f"report: {out.with_suffix('.report.json')}, {out.with_suffix('.report.md')}" in printed
    image_dir = tmp_path / "frames"
    image_dir.mkdir()
    for i, scene in zip(range(3), split_scenes(DatasetConfig(), "test"), strict=False):
        cv2.imwrite(str(image_dir / f"{i}.png"), scene.image)
    baseline = detect_jsonl(out, image_dir, tmp_path / "fp32.jsonl")
    assert sum(len(r["detections"]) for r in baseline) >= 3
    for f in report["files"]:
        path = Path(f["path"])
        records = detect_jsonl(path, image_dir, tmp_path / f"{f['kind']}.jsonl")
        assert len(records) == 3 and all(r["detections"] for r in records)
        if f["kind"] in ("nms", "uint8"):  # the same computation as fp32: the same detections
            for got, want in zip(records, baseline, strict=True):
                assert [d["class_id"] for d in got["detections"]] == [d["class_id"] for d in want["detections"]]
                np.testing.assert_allclose([d["xyxy"] for d in got["detections"]],
                                           [d["xyxy"] for d in want["detections"]], atol=0.01 + 1e-4)
        capsys.readouterr()  # detect's summary
        assert main(["eval", str(path), "--json", "--quiet"]) == 0
        measured = json.loads(capsys.readouterr().out)
        assert measured["map50"] == pytest.approx(f["value"], abs=1e-6)  # eval gives what export wrote
        assert main(["info", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["metadata"]["evaluation"]["map50"] == f["value"]
        assert main(["bench", str(path), "--runs", "2", "--provider", "cpu", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["results"][0]["p50_ms"] > 0
    paths = [f["path"] for f in report["files"]]
    assert main(["select", *paths, "--latency-ms", "10000", "--runs", "3", "--provider", "cpu", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    best = max(f["value"] for f in report["files"])
    assert {c["model"]: c["accuracy"] for c in chosen["candidates"]} == {f["path"]: f["value"] for f in report["files"]}
    assert next(f["value"] for f in report["files"] if f["path"] == chosen["chosen"]) == best
    assert onnx.load(str(out.with_suffix(".nms.onnx"))).graph.output[0].name == "detections"


@pytest.mark.slow
def test_every_encoder_file_runs_in_face(tmp_path, capsys, photos):
    """The face encoder's variants (fresh weights) enroll and identify a person like the fp32 file."""
    out = tmp_path / "enc.onnx"
    assert main(["export", "facenet", "--out", str(out), "--fp16", "--int8", "--calib", "8", "--uint8-input",
                 "--max-drop", "1", "--bench-runs", "2", "--quiet"]) == 0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert [f["kind"] for f in report["files"]] == ["fp32", "fp16", "int8", "uint8"]
    assert all(f["metric"] == "auc" and 0 <= f["value"] <= 1 for f in report["files"])
    capsys.readouterr()
    for f in report["files"]:
        gallery = tmp_path / f"{f['kind']}.db"
        common = ["--gallery", str(gallery), "--detector", str(ASSETS / "yolo-face.onnx"), "--encoder", f["path"],
                  "--conf", "0.25", "--detector-provider", "cpu", "--encoder-provider", "cpu", "--json"]
        assert main(["face", "enroll", "--name", "Alice", "--images", *map(str, photos["Alice"]), *common]) == 0
        assert main(["face", "identify", "--image", str(photos["Alice"][0]), "--threshold", "1e-4", *common]) == 0
        found = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert found["name"] == "Alice", f["kind"]


def test_fp16_parity_is_enforced(tmp_path, lenet):
    report = export_model(ExportOptions(lenet, tmp_path / "l.onnx", fp16=True, fp16_tolerance=1e-9, bench_runs=2,
                                        progress=False))
    fp16 = report.files[1]
    assert (fp16.kind, fp16.status, fp16.over_budget) == ("fp16", "refused", True)
    assert fp16.note.startswith(f"parity {fp16.parity:.2e} > 1e-09") and fp16.parity > 1e-9
    assert not (tmp_path / "l.fp16.onnx").exists() and (tmp_path / "l.onnx").exists()
    assert report.refused == [fp16]
