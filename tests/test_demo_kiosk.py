"""`edgepipe demo kiosk` as a user runs it, on a small clip: the kiosk's decisions against the clip's truth (exit 0),
the samples of an earlier run reused only when complete, and a threshold that refuses everyone (exit 1)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgepipe.apps.cli import build_parser
from edgepipe.apps.commands import demo as commands
from edgepipe.apps.face.demo import samples_for
from edgepipe.apps.face.samples import MANIFEST, SamplesOptions
from edgepipe.postprocess.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--people", "2", "--photos", "2", "--unknown", "1", "--fps", "8", "--quiet")


def test_demo_is_the_detector_unless_it_says_kiosk():
    parser = build_parser()
    for argv in (["demo", "--frames", "5"], ["demo", "detect", "--frames", "5"]):
        args = parser.parse_args(argv)
        assert args.func is commands.run and args.frames == 5
    args = parser.parse_args(["demo", "kiosk", "--people", "2"])
    assert args.func is commands.run_kiosk and args.people == 2 and args.detector.name == "yolo-face.onnx"


def demo(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepipe.apps", "demo", "kiosk", "--out", str(out), *SMALL, *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("kiosk-demo")
    return out, demo(out)


def test_the_kiosk_welcomes_the_enrolled_once_and_refuses_the_unknown(first):
    out, result = first
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    visits = json.loads((out / "samples" / "kiosk.visits.json").read_text())
    events = re.findall(r"^ +frame +\d+ t= *[\d.]+s +(welcome|unknown) +(\w*)", result.stdout, re.MULTILINE)
    expected = sorted(("welcome", ("Ada", "Grace")[v["identity"]]) for v in visits if v["enrolled"] and not v["small"])
    assert sorted(e for e in events if e[0] == "welcome") == expected  # each enrolled visit, once, by name
    assert [e[0] for e in events].count("unknown") == sum(not v["enrolled"] for v in visits) == 1
    assert "the kiosk's decisions match the truth" in result.stdout
    assert "sample photos:" not in result.stderr  # --quiet
    assert (out / "faces.db").is_file() and (out / "kiosk-annotated.mp4").stat().st_size > 0
    assert not (out / "faces.partial.db").exists()


def test_a_second_run_reuses_the_samples_and_a_threshold_of_zero_fails(first):
    out, _ = first
    before = {p: p.stat().st_mtime_ns for p in (out / "samples").rglob("*") if p.is_file()}
    result = demo(out, "--threshold", "0", "--json")
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"reusing the samples in {out / 'samples'}" in result.stdout
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["reused"] and not report["matches"] and report["threshold"] == 0.0
    assert report["score"]["welcomed"] == 0 and report["score"]["enrolled_visits"] >= 4  # nobody is that close
    assert {p: p.stat().st_mtime_ns for p in (out / "samples").rglob("*") if p.is_file()} == before


def test_incomplete_or_foreign_samples_are_not_reused(tmp_path, capsys):
    options = SamplesOptions(tmp_path / "samples", people=1, photos=1, unknown=0, calibration_people=2, video=False,
                             progress=False)
    made, reused = samples_for(options)
    assert not reused and (tmp_path / "samples" / MANIFEST).is_file()
    (tmp_path / "samples" / MANIFEST).unlink()  # as a run killed before its end leaves it
    shutil.copy(made.enroll["Ada"][0], tmp_path / "first.jpg")
    again, reused = samples_for(options)
    assert not reused and "again (the earlier ones are incomplete)" in capsys.readouterr().out
    assert Path(again.enroll["Ada"][0]).read_bytes() == (tmp_path / "first.jpg").read_bytes()  # the same seed
    assert samples_for(options)[1] and "reusing the samples" in capsys.readouterr().out
    assert not samples_for(SamplesOptions(**{**vars(options), "seed": 1}))[1]  # other options: made again
    (tmp_path / "samples" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"holds files the demo did not write \(notes.txt\)"):
        samples_for(SamplesOptions(**{**vars(options), "seed": 2}))
