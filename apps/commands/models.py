"""`edgepipe models`: the model zoo with tasks, input shapes and parameter counts (no torch: nothing is built)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the course's models: task, input shape, parameters")
    p.add_argument("--json", action="store_true", help="print a JSON list of {name, family, input_shape, params, "
                                                       "task, description}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one row per zoo model (name, task, input shape C x H x W or n_x, parameters, description)."""
    from edgepipe.export.zoo import ZOO  # no torch: the zoo's table, nothing built
    if args.json:
        print(json.dumps([asdict(i) for i in ZOO], indent=2))
        return 0
    print(f"{'name':<12}{'task':<10}{'input':<16}{'parameters':>14}  description")
    for i in ZOO:
        shape = "x".join(str(d) for d in i.input_shape)
        print(f"{i.name:<12}{i.task:<10}{shape:<16}{i.params:>14,}  {i.description}")
    return 0
