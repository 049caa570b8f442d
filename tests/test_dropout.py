"""`train --dropout KEEP_PROB`: inverted dropout in the dense and conv classifiers, kept in the checkpoint, off at
export; models without hidden layers refuse it."""

import numpy as np
import pytest
import torch

from edgepipe.apps.cli import main
from edgepipe.export.onnx.pipeline import export_model
from edgepipe.export.options import ExportOptions, TrainOptions
from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint
from edgepipe.export.train.pipeline import train
from edgepipe.postprocess.errors import UserError


def inverted_dropout_of(layers: torch.nn.Module, x: torch.Tensor, keep_prob: float) -> None:
    """The course's inverted dropout on layers (ending with the dropout): a unit is either dropped (0) or kept and
    scaled by 1 / keep_prob, each kept with probability keep_prob; nothing is dropped in eval mode."""
    kept = layers.eval()(x)
    dropped = layers.train()(x)
    active = kept != 0
    on = active & (dropped != 0)
    share = float(on.sum() / active.sum())
    n = int(active.sum())
    assert abs(share - keep_prob) < 5 * np.sqrt(keep_prob * (1 - keep_prob) / n)  # binomial, 5 sigma
    torch.testing.assert_close(dropped[on], kept[on] / keep_prob)  # a /= keep_prob
    assert not dropped[active & ~on].any()  # a *= d


def test_lenet5_trained_with_dropout_keeps_it_in_its_checkpoint(tmp_path, capsys):
    assert main(["train", "lenet5", "--tiny", "--dropout", "0.6", "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["build_kwargs"]["dropout"] == pytest.approx(0.4)  # p = 1 - keep_prob
    model = model_from_checkpoint(ckpt)
    drops = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(drops) == 2 and all(d.p == pytest.approx(0.4) for d in drops)  # after each hidden FC layer
    hidden = torch.nn.Sequential(*list(model.classifier)[:4])  # flatten, linear 400 -> 120, relu, dropout
    inverted_dropout_of(hidden, torch.randn(64, 16, 5, 5), 0.6)
    report = export_model(ExportOptions(tmp_path / "best.pt", tmp_path / "lenet5.onnx"))
    assert report.model.parity < 1e-4  # exported in eval mode: no dropout in the graph


def test_deep_and_shallow_take_dropout(tmp_path):
    for recipe in ("deep", "shallow"):
        result = train(TrainOptions(recipe, tmp_path / recipe, tiny=True, progress=False, keep_prob=0.8))
        model = model_from_checkpoint(load_checkpoint(result.out_dir / "best.pt"))
        hidden = len([m for m in model.modules() if isinstance(m, torch.nn.Linear)]) - 1
        assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == pytest.approx([0.2] * hidden)


@pytest.mark.parametrize(
    ("recipe", "keep_prob", "message"),
    [
        ("softmax", 0.5, "recipe softmax's model .softmax. has no hidden layer"),  # one linear layer
        ("logistic", 0.5, "recipe logistic's model .logistic. has no hidden layer"),
        ("deep", 0.0, r"keep_prob \(--dropout\) must be in \(0, 1\]"),  # keeps nothing
        ("deep", 1.5, r"keep_prob \(--dropout\) must be in \(0, 1\]"),  # not a probability
    ],
)
def test_dropout_is_refused_where_it_cannot_apply(tmp_path, recipe, keep_prob, message):
    with pytest.raises(UserError, match=message):
        train(TrainOptions(recipe, tmp_path, tiny=True, progress=False, keep_prob=keep_prob))
