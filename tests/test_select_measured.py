"""`edgepipe select` judges variants by the accuracy measured on each file, never by the training metrics they all
inherit: an int8 file whose accuracy was deliberately broken is never chosen."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgepipe.apps.cli import main
from edgepipe.export.data.samples import sample_frames
from edgepipe.export.onnx.accuracy import judged, measure
from edgepipe.export.options import ExportOptions
from edgepipe.runtime import load, preprocess
from edgepipe.runtime.metadata import from_metadata_props
from edgepipe.runtime.variants import int8_model, save_model, with_meta

YOLO = Path(__file__).resolve().parent / "assets" / "yolo-small.onnx"


@pytest.mark.slow
def test_select_never_picks_the_broken_int8(tmp_path, capsys):
    options = ExportOptions(YOLO, tmp_path / "unused.onnx", progress=False)
    fp32 = shutil.copy(YOLO, tmp_path / "yolo.onnx")
    calibration = preprocess(sample_frames(load(YOLO, providers="cpu").meta, 16, seed=1),
                             load(YOLO, providers="cpu").spec).batch
    good = save_model(int8_model(fp32, calibration, progress=False), tmp_path / "yolo.int8.onnx")
    gray = np.full_like(calibration[:4], 114 / 255)  # calibrated on flat frames, head quantized: broken on purpose
    broken = save_model(int8_model(fp32, gray, keep_head_fp32=False, progress=False), tmp_path / "broken.int8.onnx")
    reference = measure(Path(fp32), options)
    for kind, path in (("fp32", Path(fp32)), ("int8", good), ("int8", broken)):
        proto = onnx.load(str(path))
        meta = from_metadata_props({p.key: p.value for p in proto.metadata_props})
        evaluation = judged(measure(path, options), reference, kind, options.max_drop)
        save_model(with_meta(proto, replace(meta, evaluation=evaluation)), path)
    metas = {p.name: load(p, providers="cpu").meta for p in (Path(fp32), good, broken)}
    assert len({m.metrics["map50"] for m in metas.values()}) == 1  # the copied training figure: the same for all
    assert metas["broken.int8.onnx"].evaluation["drop"] > 0.05 > metas["yolo.int8.onnx"].evaluation["drop"]
    for models in ([broken, good], [good, broken], [broken, Path(fp32), good]):
        assert main(["select", *map(str, models), "--latency-ms", "10000", "--runs", "5", "--provider", "cpu",
                     "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["metric"] == "map50" and out["chosen"] != str(broken)
        rows = {Path(c["model"]).name: c for c in out["candidates"]}
        assert rows["broken.int8.onnx"]["accuracy"] == metas["broken.int8.onnx"].evaluation["map50"]
        assert rows["broken.int8.onnx"]["data"].startswith("shapes test split")
    assert main(["select", str(broken), str(good), "--latency-ms", "10000", "--runs", "3", "--provider", "cpu"]) == 0
    assert f"chosen: {good} (map50 {metas['yolo.int8.onnx'].evaluation['map50']:.4f}" in capsys.readouterr().out
