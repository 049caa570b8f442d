"""The course's gradient check: two-sided differences against backpropagation, for debugging (never in training)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edgepipe.export.options import RECIPES, GradcheckOptions
from edgepipe.postprocess.errors import UserError

# The course's reading of the relative difference: up to each bound, what it says about backpropagation.
LEVELS = ((1e-7, "great: backpropagation is right"),
          (1e-5, "probably right, but look at the tensors with the largest difference"),
          (1e-3, "take a careful look: a tensor's gradient may be wrong"))
WORRY = "worry: backpropagation probably has a bug"
PASS_BELOW = 1e-5  # the check passes (exit code 0) up to this relative difference


@dataclass(frozen=True)
class TensorCheck:
    """One parameter tensor: how many of its entries were checked and their relative difference."""

    name: str
    checked: int
    difference: float


@dataclass(frozen=True)
class GradcheckResult:
    """What gradient_check found: the relative difference over every checked parameter, and per tensor."""

    model: str
    loss: str
    batch: int
    epsilon: float
    weight_decay: float
    params: int
    checked: int
    difference: float
    tensors: tuple[TensorCheck, ...]
    seconds: float
    kinks: int = 0

    @property
    def verdict(self) -> str:
        """The course's reading of the difference (1e-7 / 1e-5 / 1e-3)."""
        return next((text for bound, text in LEVELS if self.difference <= bound), WORRY)

    @property
    def passed(self) -> bool:
        return self.difference <= PASS_BELOW

    def lines(self) -> list[str]:
        """The check as printed: what was checked, the difference and its reading, the worst tensors."""
        sample = "every parameter" if self.checked == self.params else \
            f"{self.checked:,} of {self.params:,} parameters (a uniform sample)"
        out = [f"{self.model}: {sample}, a batch of {self.batch}, loss {self.loss} + L2 (lambda "
               f"{self.weight_decay:g}), dropout off, float64, epsilon {self.epsilon:g}, {self.seconds:.1f} s",
               f"relative difference ||g_approx - g|| / (||g_approx|| + ||g||) = {self.difference:.3e}: {self.verdict}"]
        worst = sorted(self.tensors, key=lambda t: -t.difference)[:5]
        out += [f"  {t.name:<40} {t.checked:>7} checked  {t.difference:.3e}" for t in worst]
        if self.kinks:
            out.append(f"{self.kinks:,} inputs of ReLU-like layers lie within epsilon of their kink at 0 (e.g. zero "
                       "biases on a zero background): the cost has no derivative there, so a tensor feeding them "
                       "can differ although backpropagation is right; check a trained checkpoint too")
        return out


def relative_difference(approx: np.ndarray, grad: np.ndarray) -> float:
    """||approx - grad|| / (||approx|| + ||grad||), 0.0 when both are zero. approx, grad: (K,) float64."""
    denominator = np.linalg.norm(approx) + np.linalg.norm(grad)
    return float(np.linalg.norm(approx - grad) / denominator) if denominator > 0 else 0.0


def compare_gradients(model: nn.Module, cost: Callable[[], torch.Tensor], epsilon: float = 1e-7, params: int = 0,
                      seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray]]]:
    """Backpropagation's gradient of cost() (a scalar of model's parameters) against the two-sided difference
    (J(theta + epsilon) - J(theta - epsilon)) / (2 epsilon), entry by entry, over every trainable parameter or a
    uniform sample of `params` of them. The parameters are restored after each step.

    Returns approx (K,), grad (K,) float64, and per parameter tensor its name and the positions (into approx) of
    its checked entries.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    model.zero_grad()
    cost().backward()
    grads = [p.grad.detach().flatten().double().numpy() for _, p in named]
    sizes = np.array([p.numel() for _, p in named])
    total = int(sizes.sum())
    chosen = np.arange(total) if params == 0 or params >= total else \
        np.sort(np.random.default_rng(seed).choice(total, params, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    tensor_of = np.searchsorted(starts, chosen, side="right") - 1  # (K,) which tensor each chosen entry is in
    approx, grad = np.zeros(len(chosen)), np.zeros(len(chosen))
    with torch.no_grad():
        for k, (t, flat) in enumerate(zip(tensor_of, chosen, strict=True)):
            entries, j = named[t][1].view(-1), int(flat - starts[t])
            theta = entries[j].item()
            entries[j] = theta + epsilon
            plus = cost().item()
            entries[j] = theta - epsilon
            minus = cost().item()
            entries[j] = theta
            approx[k], grad[k] = (plus - minus) / (2 * epsilon), grads[t][j]
    return approx, grad, [(named[t][0], np.flatnonzero(tensor_of == t)) for t in np.unique(tensor_of)]


def gradient_check(options: GradcheckOptions) -> GradcheckResult:
    """The course's check of options.model on a small batch: float64, dropout off (batch norm on the batch's
    statistics, as in training), the cost J = loss + lambda / 2 * sum ||theta||^2 with the recipe's L2 lambda."""
    name, model, loss, batch, weight_decay, loss_name = _subject(options)
    model = copy.deepcopy(model).double().train()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()  # dropout off: the cost must be one function of the parameters
    batch = _float64(_first(batch, options.batch))
    trainable = [p for p in model.parameters() if p.requires_grad]

    def cost() -> torch.Tensor:
        return loss(model, batch)[0] + weight_decay / 2 * sum((p**2).sum() for p in trainable)

    kinks = _count_kinks(model, cost, options.epsilon)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # thousands of small forward passes: a thread pool's hand-offs would dominate them
    try:
        approx, grad, tensors = compare_gradients(model, cost, options.epsilon, options.params, options.seed)
    finally:
        torch.set_num_threads(threads)
    per_tensor = tuple(TensorCheck(n, len(at), relative_difference(approx[at], grad[at])) for n, at in tensors)
    return GradcheckResult(name, loss_name, options.batch, options.epsilon, weight_decay,
                           sum(p.numel() for p in trainable), len(approx), relative_difference(approx, grad),
                           per_tensor, time.perf_counter() - t0, kinks)


def _count_kinks(model: nn.Module, cost: Callable[[], torch.Tensor], epsilon: float) -> int:
    """How many inputs of the model's ReLU and leaky ReLU layers lie within epsilon of 0 in one cost() (counted
    before the layer runs: in-place layers overwrite their input)."""
    found = []
    hooks = [m.register_forward_pre_hook(lambda _m, args: found.append(int((args[0].abs() <= epsilon).sum())))
             for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.ReLU6))]
    try:
        with torch.no_grad():
            cost()
    finally:
        for h in hooks:
            h.remove()
    return sum(found)


def _subject(options: GradcheckOptions) -> tuple[str, nn.Module, Callable, object, float, str]:
    """(name, model, loss(model, batch) -> (J, parts), a batch, L2 lambda, loss name) for options.model."""
    from edgepipe.export.models import REGISTRY, build
    from edgepipe.export.train.loop import load_checkpoint, model_from_checkpoint, seed_everything
    from edgepipe.export.train.recipes import make_recipe

    seed_everything(options.seed)
    text = str(options.model)
    if text.endswith((".pt", ".pth")) or Path(text).is_file():
        ckpt = load_checkpoint(text)
        encoder = ckpt.get("extra", {}).get("encoder")  # a Siamese head's: its recipe embeds faces with it
        recipe = make_recipe(ckpt.get("recipe", ckpt["model"]), options.data, tiny=True,
                             encoder=Path(encoder) if encoder else None)
        recipe.weight_decay = ckpt.get("weight_decay", recipe.weight_decay)  # the L2 lambda the run trained with
        model, name = model_from_checkpoint(ckpt), f"{text} ({ckpt['model']})"
    elif text in RECIPES:
        recipe = make_recipe(text, options.data, tiny=True)
        model, name = build(recipe.model_name, **recipe.build_kwargs), f"{text} (fresh weights, seed {options.seed})"
    elif text in REGISTRY and REGISTRY[text].task == "classify":
        entry = REGISTRY[text]
        x = torch.randn(options.batch, *entry.input_shape)
        model = build(text)
        with torch.no_grad():
            classes = model.eval()(x[:1]).shape[1]
        y = torch.randint(0, classes, (options.batch,))
        return f"{text} (fresh weights, random images)", model, _cross_entropy, (x, y), 0.0, "cross-entropy"
    else:
        raise UserError(f"gradcheck takes a checkpoint, a recipe ({', '.join(RECIPES)}) or a zoo classifier, but "
                         f"got {text!r}")
    return name, model, recipe.loss, next(iter(recipe.train_batches())), recipe.weight_decay, f"of recipe {recipe.name}"


def _cross_entropy(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    x, y = batch
    return F.cross_entropy(model(x), y), {}


def _first(batch: object, n: int) -> object:
    """The first n examples of a batch: tensors and lists cut along their first axis, inside tuples too."""
    if isinstance(batch, tuple):
        return tuple(_first(b, n) for b in batch)
    return batch[:n] if isinstance(batch, (torch.Tensor, list)) else batch


def _float64(batch: object) -> object:
    """Floating tensors of a batch (inside tuples and lists too) as float64; the rest unchanged."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(_float64(b) for b in batch)
    return batch.double() if isinstance(batch, torch.Tensor) and batch.is_floating_point() else batch
