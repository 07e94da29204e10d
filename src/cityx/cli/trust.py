"""The vendor-code opt-ins of commands that run a controller submission in a world.

``cityx world run``, ``cityx redteam run`` and ``cityx oversee run`` take
``--trust-code`` (a Python entry point artifact) and ``--trust-pickle`` (a
pickle); both run the vendor's code when the model loads, so a world opens
such a submission only when the user gave the flag. The opt-ins travel to
the world's child process with the OS user as the one who gave them.
"""

from __future__ import annotations

import argparse

from .common import TRUST_CODE_HELP

TRUST_PICKLE_HELP = (
    "allow a pickle artifact: loading it runs arbitrary code (in the isolated worker)"
)


def add_trust_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--trust-code`` and ``--trust-pickle`` for a controller submission."""
    parser.add_argument(
        "--trust-code", action="store_true", help=f"for a controller submission: {TRUST_CODE_HELP}"
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help=f"for a controller submission: {TRUST_PICKLE_HELP}",
    )


def trusted_by(args: argparse.Namespace) -> dict[str, str]:
    """The opt-ins given on the command line, each with the OS user who gave it."""
    # lazy: cityx --help stays fast
    from cityx.runs.submitted import opt_ins

    return opt_ins(
        trust_code=bool(getattr(args, "trust_code", False)),
        trust_pickle=bool(getattr(args, "trust_pickle", False)),
    )
