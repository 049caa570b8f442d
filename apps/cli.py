"""The `edgepipe` command line: one subcommand per module in apps/commands, torch imported only where needed."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.metadata import project_version

# Subcommand modules. Each defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
# None of them imports torch at module level: `export` is imported inside the commands' functions; their parsers read
# their defaults from edgepipe.export.options, which needs no torch.
COMMANDS: tuple[str, ...] = ("demo", "models", "train", "eval", "export", "info", "bench", "select", "detect", "kiosk",
                             "face", "gradcheck")

log = logging.getLogger("edgepipe")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgepipe",
        description="Train the course's models, export them to ONNX, and run them at the edge with onnxruntime.",
    )
    parser.add_argument("--version", action="version", version=f"edgepipe {project_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"edgepipe.apps.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError, PermissionError) as exc:
        if args.verbose:
            raise
        print(f"edgepipe {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"edgepipe {args.command}: interrupted", file=sys.stderr)
        return 130
