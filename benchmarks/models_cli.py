"""`edgepipe models` against the way it listed the zoo before (import torch, build every model on the meta device
and count its parameters), each in a fresh process, interleaved; and the command-line start-up alone
(`edgepipe --version`) as the floor.

Run from the project root: python -m benchmarks.models_cli [--rounds 7]
Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

BEFORE = """
import torch
from edgepipe.apps.cli import build_parser
from edgepipe.export.models import REGISTRY, count_params
build_parser()
with torch.device("meta"):
    rows = [count_params(entry.builder()) for entry in REGISTRY.values()]
print(len(rows))
"""

COMMANDS = {
    "edgepipe models": [sys.executable, "-m", "edgepipe.apps", "models"],
    "before: build on meta": [sys.executable, "-c", BEFORE],
    "edgepipe --version": [sys.executable, "-m", "edgepipe.apps", "--version"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():  # one of each per round: load changes hit all alike
            t0 = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    now = statistics.median(times["edgepipe models"])
    for name, seconds in times.items():
        p50 = statistics.median(seconds)
        print(f"{name:<24} median {p50:6.2f} s  (min {min(seconds):.2f}, max {max(seconds):.2f})  "
              f"{p50 / now:5.2f}x edgepipe models")


if __name__ == "__main__":
    main()
