"""Run the ``cityx`` command line from a test, in this process or in a subprocess.

In process (the default) calls :func:`cityx.cli.main.main` with standard
output and error captured: fast, and the same parsing, error rendering and
exit codes as the installed command. ``inprocess=False`` runs
``python -m cityx.cli.main`` instead: the real entry point in a fresh
interpreter, for end-to-end tests and for commands that must not share this
process (its imports, its working directory). Either way the answer is a
:class:`CliRun`.

In process, ``sys.stdout`` and ``sys.stderr`` are swapped for the call: what
another thread prints meanwhile lands in the same capture.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.cli.main import main


@dataclass(frozen=True, slots=True)
class CliRun:
    """One finished ``cityx`` command: its arguments, exit code and output."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Standard output as JSON; raises unless it is exactly one JSON value (``--json``)."""
        return json.loads(self.out)


def cityx(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    inprocess: bool = True,
    timeout_s: float = 300.0,
) -> CliRun:
    """``cityx ARGS...``; ``cwd`` is the working directory it runs in (default: unchanged).

    ``timeout_s`` bounds a subprocess only: in process there is nothing to kill.
    """
    argv = tuple(os.fspath(a) for a in args)
    if not inprocess:
        done = subprocess.run(
            [sys.executable, "-m", "cityx.cli.main", *argv],
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=timeout_s,
        )
        return CliRun(argv, done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, --version and usage errors
            code = _exit_status(exc.code)
    return CliRun(argv, code, out.getvalue(), err.getvalue())


def _exit_status(code: str | int | None) -> int:
    # What the interpreter would exit with: None is success, a message is 1.
    if code is None:
        return 0
    return code if isinstance(code, int) else 1
