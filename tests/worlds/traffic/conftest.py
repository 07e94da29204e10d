"""Shared fixtures for the world tests: SUMO must be installed (cityx[sumo])."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest


def needs_sumo() -> None:
    # find_spec, not import: importing libsumo here would print on our stdout.
    for name in ("sumo", "libsumo", "sumolib"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the cityx[sumo] extra)")


def tree_digest(folder: Path) -> str:
    """One hash over every file's path and bytes under ``folder``."""
    digest = hashlib.sha256()
    for path in sorted(
        p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def needs_resco() -> Path:
    """The RESCO networks' folder (from sumo-rl, found without importing it)."""
    from cityx.worlds.traffic.catalogue import _resco_folder

    folder = _resco_folder()
    if folder is None:
        pytest.skip("sumo-rl (the RESCO networks) is not installed")
    return folder
