"""The course's gradient check: the two-sided difference against closed-form gradients, a broken backward caught,
dropout off and L2 included, the service and `edgepipe gradcheck`."""

import json

import numpy as np
import pytest
import torch

from edgepipe.apps.cli import main
from edgepipe.export.gradcheck import compare_gradients, gradient_check, relative_difference
from edgepipe.export.models import LogisticRegression
from edgepipe.export.options import GradcheckOptions, TrainOptions
from edgepipe.export.train.pipeline import train
from edgepipe.export.train.recipes import make_recipe


def logistic_case(seed: int, lam: float):
    """A logistic regression with random weights on random data, its cost J = BCE + lam / 2 ||theta||^2 (float64),
    and the course's closed-form gradient: dz = a - y, dw = X^T dz / m + lam w, db = sum(dz) / m + lam b."""
    g = torch.Generator().manual_seed(seed)
    model = LogisticRegression(5).double()
    with torch.no_grad():
        model.linear.weight.normal_(generator=g)
        model.linear.bias.normal_(generator=g)
    x = torch.randn(7, 5, generator=g, dtype=torch.float64)
    y = (torch.rand(7, generator=g) < 0.5).double()

    def cost() -> torch.Tensor:
        reg = lam / 2 * sum((p**2).sum() for p in model.parameters())
        return torch.nn.functional.binary_cross_entropy(model(x)[:, 0], y) + reg

    w, b = model.linear.weight.detach().numpy()[0], model.linear.bias.detach().numpy()
    a = 1 / (1 + np.exp(-(x.numpy() @ w + b)))
    dz = a - y.numpy()
    closed = np.concatenate([x.numpy().T @ dz / len(dz) + lam * w, [dz.mean() + lam * b[0]]])
    return model, cost, closed  # closed: the gradient in named_parameters order (weight, then bias)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("lam", [0.0, 0.3])  # with and without the L2 term
def test_both_gradients_match_the_closed_form(seed, lam):
    model, cost, closed = logistic_case(seed, lam)
    approx, grad, tensors = compare_gradients(model, cost, epsilon=1e-7)
    assert [name for name, _ in tensors] == ["linear.weight", "linear.bias"]
    assert relative_difference(approx, closed) < 1e-7  # the two-sided difference, against the course's formula
    assert relative_difference(grad, closed) < 1e-12  # backpropagation, against the same
    assert [p.item() for p in model.parameters() if p.numel() == 1] == [model.linear.bias.item()]  # restored


def test_a_wrong_backward_is_caught_and_named():
    class BadSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 2.2 * x  # the bug: d(x^2)/dx is 2x

    torch.manual_seed(0)
    good, bad = torch.nn.Linear(4, 3).double(), torch.nn.Linear(3, 1).double()
    model = torch.nn.ModuleDict({"good": good, "bad": bad})
    x = torch.randn(6, 4, dtype=torch.float64)
    approx, grad, tensors = compare_gradients(model, lambda: BadSquare.apply(bad(torch.tanh(good(x)))).sum())
    assert relative_difference(approx, grad) > 1e-3  # the course's "worry"
    by_tensor = {name: relative_difference(approx[at], grad[at]) for name, at in tensors}
    assert all(d > 1e-3 for d in by_tensor.values())  # every tensor upstream of the bad square is off


def test_a_sample_checks_that_many_distinct_entries():
    model, cost, closed = logistic_case(0, 0.0)
    approx, _, tensors = compare_gradients(model, cost, params=3, seed=1)
    positions = np.concatenate([at for _, at in tensors])
    assert len(approx) == 3 and sorted(positions) == [0, 1, 2]
    assert all(np.isclose(closed, a, rtol=1e-6).sum() == 1 for a in approx)  # each one entry of the gradient


def test_recipe_check_is_great_and_checks_every_parameter():
    result = gradient_check(GradcheckOptions("logistic"))
    assert (result.params, result.checked) == (65, 65)
    assert result.difference < 1e-7 and result.passed and result.verdict.startswith("great")
    assert result.weight_decay == make_recipe("logistic", tiny=True).weight_decay


def test_a_checkpoint_trained_with_dropout_is_checked_with_dropout_off(tmp_path):
    run = train(TrainOptions("deep", tmp_path, tiny=True, progress=False, keep_prob=0.5, weight_decay=0.01))
    result = gradient_check(GradcheckOptions(run.out_dir / "best.pt", params=300))
    assert result.weight_decay == 0.01  # the L2 term the run trained with is in the cost
    assert result.passed and result.difference < 1e-6  # random masks in J(theta +- eps) would differ wildly


def test_cli_gradcheck(capsys):
    assert main(["gradcheck", "softmax", "--params", "50", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "50 of 650 parameters" in out and "great" in out
    assert main(["gradcheck", "logistic", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["passed"] is True and record["checked"] == 65
    assert main(["gradcheck", "no-such-model"]) == 2
    assert "gradcheck takes a checkpoint, a recipe" in capsys.readouterr().err
    assert main(["gradcheck", "logistic", "--epsilon", "0"]) == 2
