"""What every ``cityx`` subcommand module shares: exit codes, registration, output.

A subcommand module exposes ``register(sub)``, which adds its parsers with
:func:`add_command`; each handler takes the parsed arguments and returns
an exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_VERDICT = 0, 1, 2, 3

Handler = Callable[[argparse.Namespace], int]
Subparsers = Any  # argparse's _SubParsersAction is private


def add_command(
    parent: Subparsers, name: str, help_text: str, example: str, handler: Handler
) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with an example."""
    parser: argparse.ArgumentParser = parent.add_parser(
        name,
        help=help_text,
        description=help_text,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  {example}",
    )
    parser.set_defaults(handler=handler)
    return parser


def add_group(parent: Subparsers, name: str, help_text: str) -> Subparsers:
    """A command with subcommands of its own (``cityx audit verify``)."""
    group = parent.add_parser(name, help=help_text, description=help_text)
    return group.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)


def emit(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    """One JSON object with --json, else the human text."""
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(obj, allow_nan=False) + "\n")
    else:
        sys.stdout.write(text + "\n")


def seed(text: str) -> int:
    """An argparse type for seeds: an integer in [0, 2**63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError("must be between 0 and 2**63 - 1")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type for durations: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


TRUST_CODE_HELP = (
    "allow a Python entry point artifact: loading it runs the vendor's code (in the "
    "isolated worker)"
)
