"""The `edgepipe` command line: one subcommand per module in apps/commands, torch imported only where needed."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import cv2
import onnxruntime as ort

from edgepipe.apps.servers import Unreachable
from edgepipe.postprocess.errors import UserError
from edgepipe.runtime.files import BAD_PATH, OutputError
from edgepipe.runtime.metadata import project_version
from edgepipe.runtime.progress import INTERRUPTED

# Subcommand modules. Each defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
# None of them imports torch at module level: `export` is imported inside the commands' functions; their parsers read
# their defaults from edgepipe.export.options, which needs no torch.
COMMANDS: tuple[str, ...] = ("demo", "models", "train", "eval", "export", "quantize", "info", "bench", "select",
                             "detect", "kiosk", "face", "gradcheck", "dev")

log = logging.getLogger("edgepipe")


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to read more, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(only: str = "") -> argparse.ArgumentParser:
    """The whole command line, or with only that one command's parser when only names one (the other commands'
    modules, and what they import, stay unloaded: a command starts sooner)."""
    parser = Parser(
        prog="edgepipe",
        description="Train the course's models, export them to ONNX, and run them at the edge with onnxruntime.",
    )
    parser.add_argument("--version", action="version", version=f"edgepipe {project_version()}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, onnxruntime's and OpenCV's own log lines, and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        importlib.import_module(f"edgepipe.apps.commands.{name}").register(sub)
    return parser


def command_named(argv: list[str]) -> str:
    """The command argv runs: its first word when only global options come before it, else "" (no command, or
    one argparse will refuse with the list of them)."""
    for word in argv:
        if word in COMMANDS:
            return word
        if word not in ("-v", "--verbose"):
            return ""
    return ""


def main(argv: list[str] | None = None) -> int:
    """Run one command. Exit codes: 0 success, 1 a negative answer or a failed run, 2 bad input, 130 interrupted
    (Ctrl-C or SIGTERM), 141 output to a closed pipe."""
    parser = build_parser(command_named(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    native_logs(args.verbose)
    if args.command is None:
        parser.print_help()
        return 0
    name = f"edgepipe {args.command}"
    try:
        with interrupts():
            return int(args.func(args) or 0)
    except (UserError, *BAD_PATH) as exc:
        if args.verbose:
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except (OutputError, Unreachable) as exc:
        if args.verbose:
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def run(argv: list[str] | None = None) -> NoReturn:
    """The `edgepipe` program: main(argv), then exit with its code. An interrupted command (130) ends at once once
    the streams are flushed and the logging handlers closed: its own cleanup already ran as the interrupt unwound,
    and tearing down PyTorch's and onnxruntime's native libraries at interpreter exit can take seconds, while Ctrl-C
    and SIGTERM must stop a command within one."""
    code = main(argv)
    if code == 130:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def native_logs(verbose: bool) -> None:
    """Only edgepipe's own words on the terminal: onnxruntime's and OpenCV's (with FFmpeg's) log lines appear with
    --verbose only; what they report reaches the user as edgepipe's one-line errors."""
    ort.set_default_logger_severity(0 if verbose else 4)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_INFO if verbose else cv2.utils.logging.LOG_LEVEL_SILENT)
    os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "32" if verbose else "-8"  # AV_LOG_INFO / AV_LOG_QUIET


@contextmanager
def interrupts() -> Iterator[None]:
    """Ctrl-C and SIGTERM stop a command by KeyboardInterrupt (the camera apps set their own SIGTERM handler inside),
    and mark it interrupted (runtime.progress.INTERRUPTED) so that an interrupt swallowed inside a native call is
    raised again at the next step of the work."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_: object) -> None:
        INTERRUPTED.set()
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        INTERRUPTED.clear()
