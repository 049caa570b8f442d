"""The edgepipe command line: version, help, and the demo's detections against its generated ground truth."""

import json

import numpy as np
import pytest

from apps.cli import main
from postprocess import box_iou


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("edgepipe ")
    assert main([]) == 0
    assert "usage: edgepipe" in capsys.readouterr().out


@pytest.mark.parametrize("seed", range(5))
def test_demo_finds_every_generated_object_once(capsys, seed):
    assert main(["demo", "--json", "--objects", "6", "--seed", str(seed)]) == 0
    out = json.loads(capsys.readouterr().out)
    det = np.array([d["xyxy"] for d in out["detections"]]).reshape(-1, 4)
    truth = np.array(out["truth"]).reshape(-1, 4)
    iou = box_iou(det, truth)
    # One detection per object (the duplicates were suppressed), each on its own object.
    assert len(det) == len(truth) == 6
    assert sorted(iou.argmax(axis=1).tolist()) == list(range(6))
    assert iou.max(axis=1).min() > 0.95


def test_bad_option_is_one_line_error(capsys):
    assert main(["demo", "--conf", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgepipe demo: error: conf_threshold must be in [0, 1], but got 2.0")
    assert "Traceback" not in err
