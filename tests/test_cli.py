"""The edgepipe command line: version, help, one-line errors, and the demo end to end on a tiny training run."""

import json

import pytest

from edgepipe.apps.cli import main
from edgepipe.export.train.loop import fit
from edgepipe.export.train.recipes import make_recipe


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("edgepipe ")
    assert main([]) == 0
    assert "usage: edgepipe" in capsys.readouterr().out


def test_demo_end_to_end_reuses_a_checkpoint(tmp_path, capsys):
    fit(make_recipe("yolo-small", tmp_path / "data", tiny=True), tmp_path / "yolo", progress=False)
    args = ["demo", "--json", "--out", str(tmp_path / "demo"), "--checkpoint", str(tmp_path / "yolo" / "best.pt"),
            "--data", str(tmp_path / "data"), "--frames", "20", "--provider", "cpu", "--tiny"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("model", "video", "annotated_video", "detections"):
        assert (tmp_path / "demo" / result[key].split("/")[-1]).exists(), key
    assert len((tmp_path / "demo" / "detections.jsonl").read_text().splitlines()) == 20
    assert len(list((tmp_path / "demo" / "annotated-images").glob("*.png"))) == 8
    assert 0.0 <= result["recall"] <= 1.0 and result["objects"] > 0
    assert set(result["crossings"]) == set(result["crossings_truth"]) == {"left_to_right", "right_to_left"}


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["models"], "models"), (["-v", "face", "list"], "face"), (["--version"], ""), (["modelz"], ""),
     (["--verbose", "demo", "--tiny"], "demo"), ([], "")],
)
def test_a_command_loads_only_its_own_parser(argv, command):
    from edgepipe.apps.cli import COMMANDS, build_parser, command_named

    assert command_named(argv) == command
    sub = next(a for a in build_parser(command)._actions if a.dest == "command")
    assert list(sub.choices) == ([command] if command else list(COMMANDS))


def test_bad_option_is_one_line_error(capsys):
    assert main(["demo", "--frames", "0", "--checkpoint", "missing.pt"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgepipe demo: error: --frames must be >= 1, but got 0")
    assert "Traceback" not in err
