"""Exit codes that scripts rely on, from real processes (issue 18): `face verify` 0 for a match, 1 for no match, 2
for bad input; `face identify` 1 for an unknown face; `select` 1 when no model meets the bound; each stated in the
command's --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgepipe.apps.cli import build_parser, main
from tests.detect_runs import ROOT
from tests.face_commands import models
from tests.onnx_graphs import conv_model, save
from tests.test_cli_runtime import described


def edgepipe(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """`edgepipe ARGS` in a new process."""
    return subprocess.run([sys.executable, "-m", "edgepipe.apps", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, photos) -> Path:
    """A gallery with Alice enrolled from her first photo (in-process: the processes below only answer)."""
    path = tmp_path_factory.mktemp("gallery") / "faces.db"
    assert main(["face", "enroll", "--name", "Alice", "--images", str(photos["Alice"][0]), *models(path)]) == 0
    return path


@pytest.mark.parametrize(
    ("probe", "threshold", "code", "first_word"),
    [
        ("Alice", "0.01", 0, "match:"),  # her enrolled photo: distance 0
        ("Bob", "0.0", 1, "no match:"),  # another person's face never lies at distance 0
    ],
)
def test_verify_answers_with_its_exit_code(gallery, photos, probe, threshold, code, first_word):
    r = edgepipe("face", "verify", "--name", "Alice", "--image", photos[probe][0], "--threshold", threshold,
                 *models(gallery))
    assert r.returncode == code, r.stderr
    assert r.stdout.startswith(first_word)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--name", "Nobody", "--image", "PHOTO"], "no person named 'Nobody'"),
        (["--name", "Alice", "--image", "missing.png"], "missing.png"),
    ],
)
def test_verify_bad_input_is_2(gallery, photos, argv, message):
    argv = [str(photos["Alice"][0]) if a == "PHOTO" else a for a in argv]
    r = edgepipe("face", "verify", *argv, "--threshold", "1", *models(gallery))
    assert r.returncode == 2 and message in r.stderr and r.stdout == ""


@pytest.mark.parametrize(("probe", "threshold", "code", "name"), [("Alice", "0.01", 0, "Alice"),
                                                                  ("Bob", "0.0", 1, "unknown")])
def test_identify_answers_1_for_an_unknown_face(gallery, photos, probe, threshold, code, name):
    r = edgepipe("face", "identify", "--image", photos[probe][0], "--threshold", threshold, *models(gallery))
    assert r.returncode == code, r.stderr
    assert r.stdout.startswith(f"{name}:")


def test_select_answers_1_when_no_model_meets_the_bound(tmp_path):
    model = save(conv_model(props=described({"accuracy": 0.9}))[0], tmp_path / "m.onnx")
    common = ["select", model, "--runs", "2", "--warmup", "0", "--provider", "cpu"]
    met = edgepipe(*common, "--latency-ms", "10000")
    assert met.returncode == 0 and f"chosen: {model}" in met.stdout, met.stderr
    missed = edgepipe(*common, "--latency-ms", "1e-6")
    assert missed.returncode == 1 and "no model meets p50 <= 1e-06 ms" in missed.stderr
    bad = edgepipe(*common, "--latency-ms", "-1")
    assert bad.returncode == 2 and "--latency-ms must be > 0" in bad.stderr


@pytest.mark.parametrize(
    ("command", "codes"),
    [
        (["face", "verify"], "exit codes: 0 a match, 1 no match, 2 bad input"),
        (["face", "identify"], "1 unknown (nobody within the threshold), 2 bad input"),
        (["select"], "1 no model meets the bound, 2 bad input"),
    ],
)
def test_help_states_the_exit_codes(command, codes):
    parser = build_parser()
    for name in command:  # down the subcommands
        parser = next(a for a in parser._actions if a.dest in ("command", "face_command")).choices[name]
    assert codes in " ".join(parser.format_help().split())
