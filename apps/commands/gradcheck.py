"""`edgepipe gradcheck MODEL`: the course's gradient check of a model's backpropagation (needs the train extra)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from edgepipe.apps.commands.common import options_from_args


def register(sub: argparse._SubParsersAction) -> None:
    from edgepipe.export.options import RECIPES, GradcheckOptions  # no torch: the defaults are defined there, once

    p = sub.add_parser("gradcheck", help="check backpropagation against two-sided differences (debugging only)",
                       description="The course's gradient check: on a small batch, in float64, with dropout off and "
                       "the L2 term included, compare backpropagation's gradient with (J(theta + eps) - "
                       "J(theta - eps)) / (2 eps) by ||g_approx - g|| / (||g_approx|| + ||g||), read against 1e-7 "
                       "(great), 1e-5 and 1e-3 (worry). Exit code 0 up to 1e-5, else 1.")
    p.add_argument("model", help=f"a checkpoint (runs/NAME/best.pt), a recipe ({', '.join(RECIPES)}) or a zoo "
                   "classifier (random images)")
    p.add_argument("--batch", type=int, default=GradcheckOptions.batch, help="examples (default %(default)s)")
    p.add_argument("--epsilon", type=float, default=GradcheckOptions.epsilon,
                   help="the two-sided difference's step (default %(default)s)")
    p.add_argument("--params", type=int, default=GradcheckOptions.params,
                   help="parameters to check, a uniform sample (0: every one; default %(default)s)")
    p.add_argument("--seed", type=int, default=GradcheckOptions.seed,
                   help="seed of fresh weights, the batch and the sample (default %(default)s)")
    p.add_argument("--data", type=Path, default=GradcheckOptions.data,
                   help="where generated data sets live (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgepipe.export.gradcheck import gradient_check
    from edgepipe.export.options import GradcheckOptions

    result = gradient_check(options_from_args(GradcheckOptions, args))
    print(json.dumps({**asdict(result), "verdict": result.verdict, "passed": result.passed}) if args.json
          else "\n".join(result.lines()))
    return 0 if result.passed else 1
