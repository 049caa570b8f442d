"""Train a recipe as `edgepipe train` does: the recipe, its overrides, torch's threads, the start model, then fit."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from edgepipe.export.options import TrainOptions
from edgepipe.export.train.loop import TrainResult, fit, load_checkpoint, unfinished
from edgepipe.export.train.recipes import make_recipe, set_keep_prob
from edgepipe.export.train.transfer import start_model
from edgepipe.runtime.files import Input, Output, check_outputs

log = logging.getLogger("edgepipe.train")

# TrainOptions fields that replace the Recipe field of the same name when they are not None.
RECIPE_OVERRIDES = ("epochs", "optimizer", "learning_rate", "decay", "decay_rate", "weight_decay")


TRAINING_FILES = ("last.pt", "best.pt", "curves.png", "report.json", "report.md")  # what fit writes in --out


def train(options: TrainOptions) -> TrainResult:
    """Train options.recipe into options.out_dir ({last.pt, best.pt, curves.png, report.json, report.md}) and
    return that folder, the best evaluation's metrics and the training time. Sets torch's CPU threads when
    options.threads is not 0 (for the whole process). A --resume checkpoint that is the last.pt of an interrupted
    run goes on after its epoch, to its own number of epochs unless options.epochs is given; any other checkpoint
    gives its weights to a new run. Refuses, before any work, an --out that is a file, cannot be written, is the
    --data folder, or whose files would replace the --resume or --finetune checkpoint."""
    out = options.out_dir
    written = Output("--out", out, folder=True, files=tuple(out / name for name in TRAINING_FILES))
    check_outputs([written], [Input(what, Path(path)) for what, path in (
        ("--resume", options.resume), ("--finetune", options.finetune), ("--data", options.data)) if path])
    if options.threads:
        torch.set_num_threads(options.threads)
    workers = 0 if options.tiny else options.workers
    recipe = make_recipe(options.recipe, options.data, tiny=options.tiny, workers=workers, encoder=options.encoder)
    for name in RECIPE_OVERRIDES:
        value = getattr(options, name)
        if value is not None:
            setattr(recipe, name, value)
    if options.keep_prob is not None:
        set_keep_prob(recipe, options.keep_prob)
    model = start_model(recipe, options.resume, options.finetune, options.freeze_backbone)
    resume = load_checkpoint(options.resume) if options.resume else None
    if resume is None or not unfinished(resume):
        return fit(recipe, options.out_dir, seed=options.seed, model=model, progress=options.progress)
    if options.epochs is None:
        recipe.epochs = int(resume["epochs"])
    log.info("resuming %s after epoch %d of %d (its optimizer's state, history and best evaluation too)",
             options.resume, resume["epoch"], recipe.epochs)
    return fit(recipe, options.out_dir, seed=options.seed, model=model, progress=options.progress, resume=resume)
