"""The export floor's typed options: the command line adds no defaults of its own, bad values are refused."""

from pathlib import Path

import pytest

from edgepipe.apps.cli import build_parser
from edgepipe.apps.commands.common import options_from_args
from edgepipe.export.options import EvalOptions, ExportOptions, GradcheckOptions, TrainOptions
from edgepipe.postprocess.errors import UserError


@pytest.mark.parametrize(
    ("argv", "cls", "expected"),
    [
        (["export", "lenet5", "--out", "m.onnx"], ExportOptions, ExportOptions("lenet5", Path("m.onnx"))),
        (["train", "lenet5"], TrainOptions, TrainOptions("lenet5")),
        (["eval", "m.onnx"], EvalOptions, EvalOptions(Path("m.onnx"))),
        (["gradcheck", "deep"], GradcheckOptions, GradcheckOptions("deep")),
    ],
)
def test_parsed_defaults_are_the_options_defaults(argv, cls, expected):
    assert options_from_args(cls, build_parser().parse_args(argv)) == expected


def test_every_option_given_on_the_command_line_reaches_its_field():
    args = build_parser().parse_args(
        ["train", "deep", "--out", "o", "--data", "d", "--epochs", "3", "--optimizer", "sgd", "--lr", "0.1",
         "--decay", "cosine", "--decay-rate", "0.5", "--weight-decay", "0.01", "--seed", "4", "--workers", "2",
         "--threads", "1", "--resume", "r.pt", "--finetune", "f.pt", "--freeze-backbone", "--tiny", "--dropout", "0.8"])
    assert options_from_args(TrainOptions, args) == TrainOptions(
        "deep", Path("o"), Path("d"), 3, "sgd", 0.1, "cosine", 0.5, 0.01, 4, 2, 1, Path("r.pt"), Path("f.pt"),
        freeze_backbone=True, tiny=True, keep_prob=0.8)
    args = build_parser().parse_args(
        ["export", "yolo-small", "--out", "y.onnx", "--opset", "18", "--imgsz", "96", "128", "--simplify", "--fp16",
         "--int8", "--calib", "8", "--nms", "--conf", "0.5", "--iou", "0.6", "--tolerance", "0.001", "--uint8-input",
         "--fp16-tolerance", "0.02", "--uint8-tolerance", "1e-4", "--max-drop", "0.05", "--keep-failed", "--split",
         "dev", "--data", "d", "--bench-runs", "7", "--quiet"])
    assert options_from_args(ExportOptions, args) == ExportOptions(
        "yolo-small", Path("y.onnx"), 18, (96, 128), True, True, True, 8, True, 0.5, 0.6, 0.001, True, 0.02, 1e-4,
        0.05, True, "dev", Path("d"), 7, False)


def test_train_options_default_folder():
    assert TrainOptions("lenet5").out_dir == Path("runs/lenet5")
    assert TrainOptions("lenet5", Path("elsewhere")).out_dir == Path("elsewhere")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ExportOptions("lenet5", Path("m.onnx"), calib=0), "calib must be >= 1"),  # int8 needs samples
        (lambda: ExportOptions("yolo-small", Path("m.onnx"), imgsz=(160,)), r"imgsz must be \(height, width\)"),
        (lambda: ExportOptions("yolo-small", Path("m.onnx"), imgsz=(0, 160)), "imgsz must be"),  # empty input
        (lambda: TrainOptions("deep", epochs=0), "epochs must be >= 1, but got 0"),  # nothing to train
        (lambda: TrainOptions("deep", optimizer="lbfgs"), "optimizer must be one of"),
        (lambda: TrainOptions("deep", decay="step"), "decay must be one of"),
        (lambda: TrainOptions("deep", threads=-1), "workers and threads must be >= 0"),
        (lambda: EvalOptions(Path("m.onnx"), split="val"), "split must be one of"),  # not a split name
    ],
)
def test_bad_options_are_refused_on_construction(make, message):
    with pytest.raises(UserError, match=message):
        make()
