"""`edgepipe train RECIPE`: train a course model on local data (needs the train extra: torch)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgepipe.apps.commands.common import options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    from edgepipe.export.options import DECAYS, OPTIMIZERS, RECIPES, RUNS_DIR, TrainOptions  # no torch

    p = sub.add_parser("train", help="train a course model on local data (lenet5, yolo-small, facenet, ...)")
    p.add_argument("recipe", help=f"{', '.join(RECIPES[:-1])} or {RECIPES[-1]}")
    p.add_argument("--out", type=Path, help=f"output folder (default: {RUNS_DIR}/RECIPE)")
    p.add_argument("--data", type=Path, default=TrainOptions.data,
                   help="where generated data sets live (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="override the optimizer")
    p.add_argument("--lr", dest="learning_rate", metavar="LR", type=float, help="override the learning rate")
    p.add_argument("--decay", choices=DECAYS, help="learning-rate decay")
    p.add_argument("--decay-rate", type=float, help="the decay's rate (inverse_time, exponential)")
    p.add_argument("--weight-decay", type=float, help="L2 regularization")
    p.add_argument("--dropout", dest="keep_prob", metavar="KEEP_PROB", type=float,
                   help="inverted dropout on the hidden layers, keeping each unit with this probability (deep, "
                   "shallow, lenet5, window; default: no dropout)")
    p.add_argument("--seed", type=int, default=TrainOptions.seed,
                   help="seed of the initial weights and the batches (default: %(default)s)")
    p.add_argument("--workers", type=int, default=TrainOptions.workers,
                   help="DataLoader workers for augmentation (detectors; default: %(default)s)")
    p.add_argument("--threads", type=int, default=TrainOptions.threads,
                   help="torch CPU threads (default: %(default)s, torch's own)")
    p.add_argument("--resume", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--finetune", type=Path, help="transfer learning: load this checkpoint's backbone")
    p.add_argument("--freeze-backbone", action="store_true", help="with --finetune: train only the head")
    p.add_argument("--encoder", type=Path, help="siamese: the face encoder (.onnx or a facenet checkpoint) whose "
                   "embeddings the head learns to compare")
    p.add_argument("--tiny", action="store_true", help="a seconds-long configuration (smoke test)")
    p.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgepipe.export.options import TrainOptions
    from edgepipe.export.train.pipeline import train

    options = options_from_args(TrainOptions, args)
    result = train(options)
    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.best_metrics.items() if isinstance(v, float))
    print(f"trained {options.recipe} in {result.seconds:.0f} s: {shown}")
    print(f"checkpoint: {result.out_dir / 'best.pt'}; curves: {result.out_dir / 'curves.png'}; "
          f"report: {result.out_dir / 'report.md'}")
    print((result.out_dir / "report.md").read_text().strip())
    return 0
