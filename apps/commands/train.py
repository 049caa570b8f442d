"""`edgepipe train RECIPE`: train a course model on local data (needs the train extra: torch)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a course model on local data (lenet5, yolo-small, facenet, ...)")
    p.add_argument("recipe", help="lenet5, softmax, shallow, deep, logistic, yolo-small, yolo-face or facenet")
    p.add_argument("--out", type=Path, help="output folder (default: runs/RECIPE)")
    p.add_argument("--data", type=Path, default=Path("runs/data"), help="where generated data sets live")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--optimizer", choices=("sgd", "momentum", "rmsprop", "adam"), help="override the optimizer")
    p.add_argument("--lr", type=float, help="override the learning rate")
    p.add_argument("--decay", choices=("none", "inverse_time", "exponential", "cosine"), help="learning-rate decay")
    p.add_argument("--decay-rate", type=float, help="the decay's rate (inverse_time, exponential)")
    p.add_argument("--weight-decay", type=float, help="L2 regularization")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="DataLoader workers for augmentation (detectors)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's)")
    p.add_argument("--resume", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--finetune", type=Path, help="transfer learning: load this checkpoint's backbone")
    p.add_argument("--freeze-backbone", action="store_true", help="with --finetune: train only the head")
    p.add_argument("--tiny", action="store_true", help="a seconds-long configuration (smoke test)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from edgepipe.export.train.loop import fit
    from edgepipe.export.train.recipes import make_recipe
    from edgepipe.export.train.transfer import start_model

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = make_recipe(args.recipe, args.data, tiny=args.tiny, workers=0 if args.tiny else args.workers)
    for field, value in (("epochs", args.epochs), ("optimizer", args.optimizer), ("learning_rate", args.lr),
                         ("decay", args.decay), ("decay_rate", args.decay_rate), ("weight_decay", args.weight_decay)):
        if value is not None:
            setattr(recipe, field, value)
    model = start_model(recipe, args.resume, args.finetune, args.freeze_backbone)
    result = fit(recipe, args.out or Path("runs") / args.recipe, seed=args.seed, model=model)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.best_metrics.items() if isinstance(v, float))
    print(f"trained {recipe.name} in {result.seconds:.0f} s: {shown}")
    print(f"checkpoint: {result.out_dir / 'best.pt'}; curves: {result.out_dir / 'curves.png'}; "
          f"report: {result.out_dir / 'report.md'}")
    print((result.out_dir / "report.md").read_text().strip())
    return 0
