"""Paths a manifest names, kept inside the submission folder."""

from __future__ import annotations

from pathlib import Path


def resolve_inside(folder: Path, relative: str) -> Path | None:
    """``folder/relative`` if it stays inside ``folder``; else None."""
    base = folder.resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) else None


__all__ = ["resolve_inside"]
