"""The child process's entry point: ``python -m cityx.worlds.traffic._worker RUN_FOLDER``.

A module of its own, imported by nothing, so that running it with ``-m``
does not import it twice (the package imports :mod:`.runner`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .runner import child_main

if __name__ == "__main__":
    raise SystemExit(child_main(Path(sys.argv[1])))
