"""The mini-batch training loop: optimizer and decay by name, progress bar per epoch, checkpoints, curves, report."""

from __future__ import annotations

import io
import json
import logging
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgepipe.export.train.optim import decayed_rate, make_optimizer, set_rate
from edgepipe.export.train.report import bias_variance_report
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import write_atomic
from edgepipe.runtime.progress import Progress, duration

log = logging.getLogger("edgepipe.train")


@dataclass
class Recipe:
    """Everything one training run needs. build_kwargs rebuild the model from the zoo; meta holds the flat
    metadata keys the runtime needs (task, imgsz, names, head, anchors, mean, std, ...). evaluate runs every
    eval_every epochs and after the last; the best checkpoint is chosen among those evaluations. extra: plain values
    the checkpoint keeps for later steps (a Siamese head's encoder and its sample inputs for export)."""

    name: str
    model_name: str
    build_kwargs: dict
    meta: dict
    train_batches: Callable[[], Iterable]
    loss: Callable[[nn.Module, object], tuple[torch.Tensor, dict[str, float]]]
    evaluate: Callable[[nn.Module], dict[str, float]]
    key_metric: str
    baseline_error: float
    baseline_note: str
    epochs: int = 10
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    decay: str = "cosine"
    decay_rate: float = 1.0
    weight_decay: float = 0.0
    eval_every: int = 1
    tiny: bool = False
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    """Where the run wrote its files and the best epoch's metrics."""

    out_dir: Path
    best_metrics: dict[str, float]
    seconds: float


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_checkpoint(path: Path, recipe: Recipe, model: nn.Module, epoch: int, metrics: dict,
                    state: dict | None = None) -> None:
    """One file: the zoo name and its build kwargs, the state dict, the runtime metadata, the epoch of the run's
    epochs (and whether the recipe was tiny), metrics, the L2 lambda it trained with and the recipe's extra (e.g. a
    Siamese head's encoder and sample inputs), and state: what resuming needs (last.pt: the optimizer's state, the
    history, the best evaluation, the seconds trained). Plain types only, so torch.load(weights_only=True) reads
    it. Written whole or not at all (write_atomic)."""
    payload = {"model": recipe.model_name, "recipe": recipe.name, "build_kwargs": recipe.build_kwargs,
               "meta": recipe.meta, "state_dict": model.state_dict(), "epoch": epoch, "epochs": recipe.epochs,
               "tiny": recipe.tiny, "metrics": metrics, "weight_decay": recipe.weight_decay, "extra": recipe.extra,
               **(state or {})}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, buffer.getvalue())  # a full disk or Ctrl-C keeps the previous checkpoint whole


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint (weights_only=True: no code runs). Clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign files
        raise UserError(f"{path} is not an edgepipe checkpoint ({type(exc).__name__}: {str(exc)[:120]})") from None
    keys = ("model", "build_kwargs", "state_dict", "meta")
    missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UserError(f"{path} is not an edgepipe checkpoint: missing {missing}")
    return ckpt


def unfinished(ckpt: dict) -> bool:
    """Whether ckpt is the last.pt of a run stopped before its last epoch, holding what resuming needs."""
    return "optimizer" in ckpt and int(ckpt["epoch"]) < int(ckpt.get("epochs", 0))


def model_from_checkpoint(ckpt: dict) -> nn.Module:
    """The zoo model rebuilt from a checkpoint, weights loaded, in eval mode."""
    from edgepipe.export.models import build

    try:
        model = build(ckpt["model"], **ckpt["build_kwargs"])
        model.load_state_dict(ckpt["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint does not fit model {ckpt['model']!r}: {str(exc).splitlines()[0]}") from None
    return model.eval()


def train_mode(model: nn.Module) -> nn.Module:
    """model.train(), except the batch norm layers whose gamma and beta are frozen (transfer learning's frozen
    backbone): they stay in eval mode, so they normalize with their trained running statistics and do not update
    them. Returns model."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.requires_grad:
            m.eval()
    return model


def fit(recipe: Recipe, out_dir: str | Path, seed: int = 0, model: nn.Module | None = None,
        progress: bool = True, resume: dict | None = None) -> TrainResult:
    """Train recipe's model for recipe.epochs; write out_dir/{last.pt, best.pt, curves.png, report.json,
    report.md}. model: start from this module (transfer learning) instead of a fresh one. resume: the last.pt of an
    interrupted run of this recipe (load_checkpoint): training goes on after its epoch with its weights, optimizer
    state, history and best evaluation. Each epoch's line shows the time elapsed and the time left, measured."""
    from edgepipe.export.models import build

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = int(resume["epoch"]) if resume else 0
    seed_everything(seed + first)  # a resumed run does not replay the first epochs' batches
    model = model if model is not None else build(recipe.model_name, **recipe.build_kwargs)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(recipe.optimizer, trainable, recipe.learning_rate, weight_decay=recipe.weight_decay)
    history: list[dict] = list(resume.get("history", [])) if resume else []
    best: dict[str, float] = dict(resume.get("best", {})) if resume else {}
    earlier = float(resume.get("seconds", 0.0)) if resume else 0.0
    if resume:
        model.load_state_dict(resume["state_dict"])
        if "optimizer" in resume:
            opt.load_state_dict(resume["optimizer"])
    t0 = time.perf_counter()
    for epoch in range(first, recipe.epochs):
        set_rate(opt, decayed_rate(recipe.learning_rate, epoch, recipe.decay, recipe.decay_rate, recipe.epochs))
        train_mode(model)
        losses: list[float] = []
        batches = recipe.train_batches()
        steps = len(batches) if hasattr(batches, "__len__") else 0
        timing = time_left(time.perf_counter() - t0, epoch - first, recipe.epochs - first)
        with Progress(steps, f"{recipe.name} epoch {epoch + 1}/{recipe.epochs}{timing}", progress) as bar:
            for batch in batches:
                loss, _parts = recipe.loss(model, batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
                bar.update(loss=sum(losses) / len(losses))
        model.eval()
        metrics = {"epoch": epoch + 1, "train_loss": float(np.mean(losses))}
        if (epoch + 1) % recipe.eval_every == 0 or epoch + 1 == recipe.epochs:
            with torch.no_grad():
                metrics.update(recipe.evaluate(model))
        history.append(metrics)
        if progress:
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            timing = time_left(time.perf_counter() - t0, epoch + 1 - first, recipe.epochs - first)
            print(f"{recipe.name} epoch {epoch + 1}/{recipe.epochs} ({steps} steps) {shown}{timing}", file=sys.stderr,
                  flush=True)
        if recipe.key_metric in metrics and (not best or metrics[recipe.key_metric] >= best[recipe.key_metric]):
            best = metrics
            save_checkpoint(out / "best.pt", recipe, model, epoch + 1, metrics)
        state = {"optimizer": opt.state_dict(), "history": history, "best": best,
                 "seconds": earlier + time.perf_counter() - t0}
        save_checkpoint(out / "last.pt", recipe, model, epoch + 1, metrics, state)
    seconds = earlier + time.perf_counter() - t0
    _write_curves(out / "curves.png", history, recipe.key_metric)
    report = bias_variance_report(best["train_error"], best["dev_error"], recipe.baseline_error, recipe.baseline_note)
    summary = {"recipe": recipe.name, "model": recipe.model_name, "seconds": round(seconds, 1), "best": best,
               "history": history, "report": report}
    write_atomic(out / "report.json", json.dumps(summary, indent=2).encode())
    write_atomic(out / "report.md", (report["text"] + "\n").encode())
    return TrainResult(out, best, seconds)


def time_left(elapsed: float, done: int, total: int) -> str:
    """", E elapsed, L left" for the epochs of this run (done of total), L measured from the epochs done so far;
    "" before the first epoch ends (nothing measured yet)."""
    if done < 1:
        return ""
    return f", {duration(elapsed)} elapsed, {duration(elapsed / done * (total - done))} left"


def _write_curves(path: Path, history: list[dict], key: str) -> None:
    """Training loss and the key dev metric per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, [h["train_loss"] for h in history], marker="o")
    a.set(xlabel="epoch", ylabel="train loss", title="training loss")
    evaluated = [h for h in history if key in h]
    b.plot([h["epoch"] for h in evaluated], [h[key] for h in evaluated], marker="o", color="tab:green")
    b.set(xlabel="epoch", ylabel=key, title=f"dev {key}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())
