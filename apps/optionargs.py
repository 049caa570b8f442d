"""Typed options objects from parsed command-line arguments: a command's option dests are the options' field names."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import TypeVar

T = TypeVar("T")


def options_from_args(cls: type[T], args: argparse.Namespace) -> T:
    """cls (a dataclass) built from the parsed args whose dest is one of its fields; its other fields keep their
    defaults, and arguments of other names (the command, --json, ...) are left out."""
    return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})
