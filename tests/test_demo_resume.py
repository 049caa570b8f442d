"""A partial run is never reused silently (issue 18): a training stopped by Ctrl-C resumes after its last finished
epoch (the demo and `train --resume`), a finished one is reused saying which epoch and dev mAP, --retrain starts
over; and training shows its steps per epoch, the time elapsed and the time left, measured."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from edgepipe.apps.cli import build_parser, main
from edgepipe.export.demo import train_or_reuse
from edgepipe.export.train.loop import fit, load_checkpoint
from edgepipe.export.train.recipes import make_recipe
from edgepipe.postprocess.errors import UserError


def interrupted(recipe, out, at_epoch: int) -> None:
    """fit recipe into out and stop it as Ctrl-C does (KeyboardInterrupt in the main thread) as epoch at_epoch
    starts: epochs before it are finished and saved."""
    batches, started = recipe.train_batches, []

    def stopping():
        started.append(1)
        if len(started) == at_epoch:
            raise KeyboardInterrupt
        return batches()

    recipe.train_batches = stopping
    with pytest.raises(KeyboardInterrupt):
        fit(recipe, out, progress=False)


def tiny_yolo(data, epochs: int):
    recipe = make_recipe("yolo-small", data, tiny=True)
    recipe.epochs, recipe.eval_every = epochs, 1
    return recipe


def test_the_demo_resumes_an_interrupted_training_then_reuses_it_then_retrains(tmp_path, capsys):
    run, data = tmp_path / "yolo", tmp_path / "data"
    interrupted(tiny_yolo(data, 3), run, at_epoch=3)
    stopped = load_checkpoint(run / "last.pt")
    assert (stopped["epoch"], stopped["epochs"]) == (2, 3)

    assert main(["demo", "--tiny", "--json", "--checkpoint", str(run / "best.pt"), "--data", str(data), "--out",
                 str(tmp_path / "demo"), "--frames", "20", "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    best = stopped["best"]
    assert (f"resuming the interrupted training in {run} after epoch 2 of 3 (best so far: dev mAP@0.5 "
            f"{best['map50']:.3f} at epoch {best['epoch']}; --retrain to start over)") in out
    assert re.search(r"^trained 3 epochs in \d+ s: best dev mAP@0\.5 \d\.\d{3} at epoch \d$", out, re.MULTILINE)
    history = json.loads((run / "report.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]  # the first two kept, only the third trained
    assert history[:2] == stopped["history"]
    assert json.loads(out.strip().splitlines()[-1])["objects"] > 0  # and the demo went on to detect

    finished = load_checkpoint(run / "best.pt")
    assert train_or_reuse(run / "best.pt", data, None, tiny=True) == run / "best.pt"
    assert capsys.readouterr().out == (f"reusing {run / 'best.pt'}: epoch {finished['epoch']} of a finished 3-epoch "
                                       f"training, dev mAP@0.5 {finished['metrics']['map50']:.3f} at epoch "
                                       f"{finished['epoch']} (--retrain to train again)\n")

    assert train_or_reuse(run / "best.pt", data, 1, retrain=True, tiny=True) == run / "best.pt"
    assert "training the small YOLO for 1 epochs" in capsys.readouterr().out
    assert (load_checkpoint(run / "last.pt")["epoch"], load_checkpoint(run / "last.pt")["epochs"]) == (1, 1)
    assert len(json.loads((run / "report.json").read_text())["history"]) == 1


def test_the_demo_refuses_a_run_of_the_other_configuration(tmp_path):
    run = tmp_path / "yolo"
    interrupted(tiny_yolo(tmp_path / "data", 2), run, at_epoch=2)
    with pytest.raises(UserError, match=r"is from a --tiny run, and this demo asks for the full one: pass --tiny"):
        train_or_reuse(run / "best.pt", tmp_path / "data", None)
    with pytest.raises(UserError, match=r"--epochs must be >= 1"):
        train_or_reuse(run / "best.pt", tmp_path / "data", 0, tiny=True)


def test_train_resume_goes_on_after_the_last_finished_epoch(tmp_path, capsys):
    recipe = make_recipe("deep", tiny=True)
    recipe.epochs = 4
    interrupted(recipe, tmp_path / "run", at_epoch=3)
    stopped = load_checkpoint(tmp_path / "run" / "last.pt")
    assert main(["train", "deep", "--tiny", "--quiet", "--resume", str(tmp_path / "run" / "last.pt"), "--out",
                 str(tmp_path / "resumed")]) == 0
    history = json.loads((tmp_path / "resumed" / "report.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and history[:2] == stopped["history"]
    resumed = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert (resumed["epoch"], resumed["epochs"]) == (4, 4)
    assert resumed["seconds"] > stopped["seconds"]  # the time of both parts


def test_training_shows_steps_elapsed_and_time_left(tmp_path, capsys):
    recipe = make_recipe("deep", tiny=True)
    recipe.epochs = 3
    steps = len(recipe.train_batches())
    fit(recipe, tmp_path, progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("deep epoch ")
             and "elapsed" in line and "steps" in line]
    assert len(lines) == 3
    for k, line in enumerate(lines, 1):
        assert line.startswith(f"deep epoch {k}/3 ({steps} steps) ")
        assert re.search(r", \d+ s elapsed, \d+ s left$", line)
    assert lines[-1].endswith(", 0 s left")


def test_no_help_text_quotes_a_guessed_time():
    parser = build_parser()
    helps = [parser.format_help()]
    pending = [parser]
    while pending:  # every command and subcommand's --help
        for action in pending.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps += [sub.format_help() for sub in action.choices.values()]
                pending += action.choices.values()
    assert len(helps) > 20
    guessed = re.compile(r"about \d+ ?(s|sec|seconds?|min|minutes?|hours?)\b|\d+ s an epoch", re.IGNORECASE)
    assert [h for h in helps if guessed.search(" ".join(h.split()))] == []
