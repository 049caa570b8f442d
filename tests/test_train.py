"""Training: decay formulas, loss really falls, determinism, checkpoints, transfer learning, report, the training
service and the CLI."""

import json
import math

import pytest
import torch

from edgepipe.apps.cli import main
from edgepipe.export.options import TrainOptions
from edgepipe.export.train.loop import fit, load_checkpoint, model_from_checkpoint
from edgepipe.export.train.optim import decayed_rate, make_optimizer
from edgepipe.export.train.pipeline import train
from edgepipe.export.train.recipes import make_recipe
from edgepipe.export.train.transfer import start_model
from edgepipe.postprocess.errors import UserError


@pytest.mark.parametrize(
    ("decay", "rate", "epoch", "expected"),
    [
        ("none", 1.0, 5, 0.1),
        ("inverse_time", 1.0, 3, 0.1 / (1 + 1.0 * 3)),  # alpha0 / (1 + decay_rate * epoch)
        ("exponential", 0.95, 4, 0.1 * 0.95**4),  # alpha0 * 0.95^epoch
        ("cosine", 1.0, 5, 0.1 * (1 + math.cos(math.pi * 5 / 10)) / 2),
    ],
)
def test_decay_formulas(decay, rate, epoch, expected):
    assert decayed_rate(0.1, epoch, decay, rate, epochs=10) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["sgd", "momentum", "rmsprop", "adam"])
def test_optimizers_by_name(name):
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = make_optimizer(name, [w], 0.1)
    for _ in range(50):
        opt.zero_grad()
        (w**2).sum().backward()
        opt.step()
    assert abs(w.item()) < 3.0  # every optimizer moves downhill on w^2
    with pytest.raises(ValueError, match="optimizer must be one of"):
        make_optimizer("lbfgs", [w], 0.1)


@pytest.mark.parametrize("name", ["deep", "logistic", "lenet5"])
def test_training_lowers_the_loss(tmp_path, name):
    recipe = make_recipe(name, tiny=True)
    recipe.epochs = 6
    result = fit(recipe, tmp_path, progress=False)
    history = json.loads((tmp_path / "report.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert "avoidable bias" in (tmp_path / "report.md").read_text()
    assert result.best_metrics["accuracy"] == max(h["accuracy"] for h in history)


def test_same_seed_same_weights(tmp_path):
    a = fit(make_recipe("deep", tiny=True), tmp_path / "a", seed=3, progress=False)
    b = fit(make_recipe("deep", tiny=True), tmp_path / "b", seed=3, progress=False)
    wa, wb = (load_checkpoint(r.out_dir / "last.pt")["state_dict"] for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_checkpoint_round_trip_and_errors(tmp_path):
    fit(make_recipe("lenet5", tiny=True), tmp_path, progress=False)
    ckpt = load_checkpoint(tmp_path / "best.pt")
    model = model_from_checkpoint(ckpt)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ckpt["state_dict"].items())
    assert ckpt["meta"]["channel_order"] == "GRAY"
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not an edgepipe checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"missing \['model', 'build_kwargs', 'state_dict', 'meta'\]"):
        load_checkpoint(tmp_path / "other.pt")


def test_transfer_learning_freezes_exactly_the_backbone(tmp_path):
    recipe = make_recipe("facenet", tiny=True)
    fit(recipe, tmp_path / "src", progress=False)
    model = start_model(recipe, None, tmp_path / "src" / "best.pt", freeze_backbone=True)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {f"backbone.{n}" for n, _ in model.backbone.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    statistics = {n: b.clone() for n, b in model.backbone.named_buffers()}  # BN running mean, var, batches seen
    assert {n.rsplit(".", 1)[1] for n in statistics} == {"running_mean", "running_var", "num_batches_tracked"}
    fit(recipe, tmp_path / "dst", progress=False, model=model)
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]) == (n in frozen)  # the backbone did not move, the head did
    for n, b in model.backbone.named_buffers():
        assert torch.equal(b, statistics[n]), n  # frozen batch norm kept its running statistics (eval mode)
    with pytest.raises(ValueError, match="not a 'lenet5'"):
        start_model(make_recipe("lenet5", tiny=True), None, tmp_path / "src" / "best.pt", False)


def test_train_applies_the_overrides_as_a_hand_made_recipe_does(tmp_path):
    overrides = {"epochs": 2, "optimizer": "momentum", "learning_rate": 0.05, "decay": "exponential",
                 "decay_rate": 0.9, "weight_decay": 1e-3}
    result = train(TrainOptions("deep", tmp_path / "service", tiny=True, seed=3, progress=False, **overrides))
    recipe = make_recipe("deep", tiny=True)  # the reference: the same recipe changed by hand
    recipe.epochs, recipe.optimizer, recipe.learning_rate = 2, "momentum", 0.05
    recipe.decay, recipe.decay_rate, recipe.weight_decay = "exponential", 0.9, 1e-3
    fit(recipe, tmp_path / "by_hand", seed=3, progress=False)
    plain = train(TrainOptions("deep", tmp_path / "plain", tiny=True, seed=3, progress=False))

    def weights(folder):
        return load_checkpoint(folder / "last.pt")["state_dict"]

    assert result.out_dir == tmp_path / "service"
    service, by_hand, default = weights(result.out_dir), weights(tmp_path / "by_hand"), weights(plain.out_dir)
    assert all(torch.equal(service[k], by_hand[k]) for k in service)
    assert not all(torch.equal(service[k], default[k]) for k in service)  # the overrides did change the run
    assert len(json.loads((result.out_dir / "report.json").read_text())["history"]) == 2


def test_cli_train_tiny(tmp_path, capsys):
    assert main(["train", "softmax", "--tiny", "--out", str(tmp_path), "--epochs", "2", "--optimizer", "momentum"]) == 0
    out = capsys.readouterr().out
    assert "trained softmax" in out and (tmp_path / "best.pt").is_file()
    assert main(["train", "resnet9", "--tiny"]) == 2
    assert "recipe must be one of" in capsys.readouterr().err
