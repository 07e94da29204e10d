"""Rewriting a version 1 ``cityx.toml`` as version 2, comments kept.

The upgrade changes only what version 2 moved: ``schema_version`` becomes
2 and ``[data].sensitive`` becomes ``[fairness].sensitive``. It never
invents what the vendor has to state (sensitive columns or why there are
none, claims); it says what is still to declare. The file is replaced only
when the result reads back as a valid version 2 manifest.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import TOMLKitError

from cityx.core import MANIFEST_FILE, Manifest, ManifestError, SystemKind

from .manifest_file import read_manifest


@dataclass(frozen=True, slots=True)
class Upgrade:
    """What :func:`upgrade_manifest` did to ``path``, and what the vendor still has to state."""

    path: Path
    from_version: int
    changed: bool
    todo: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "from_version": self.from_version,
            "changed": self.changed,
            "todo": list(self.todo),
        }


def upgrade_manifest(folder: Path) -> Upgrade:
    """Rewrite ``folder/cityx.toml`` as schema version 2; a ManifestError if it is not valid."""
    path = Path(folder) / MANIFEST_FILE
    manifest, problems = read_manifest(Path(folder))
    if manifest is None:
        first = problems[0]
        raise ManifestError(
            first.message, where=first.where, hint="fix it first; nothing was written"
        )
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    version = int(doc.get("schema_version", 1))
    if version != 1:
        return Upgrade(path, version, False, _todo(manifest))
    doc["schema_version"] = 2
    data = doc.get("data")
    if data is not None and "sensitive" in data:
        sensitive = data.pop("sensitive")
        fairness = tomlkit.table()
        fairness.add("sensitive", sensitive)
        doc.add("fairness", fairness)
    new = tomlkit.dumps(doc)
    try:
        Manifest.model_validate(tomllib.loads(new))
    except (ValidationError, tomllib.TOMLDecodeError, TOMLKitError) as exc:  # a bug here
        raise ManifestError(
            f"the upgraded manifest would not be valid: {exc}", where=str(path)
        ) from exc
    tmp = path.with_name(f".{path.name}.upgrade")
    tmp.write_text(new, encoding="utf-8")
    os.replace(tmp, path)
    return Upgrade(path, 1, True, _todo(manifest))


def _todo(manifest: Manifest) -> tuple[str, ...]:
    todo = []
    if manifest.system.kind is SystemKind.PREDICTOR and not manifest.fairness.declared:
        todo.append(
            'declare [fairness] sensitive = [...] (holdout columns), or not_applicable = "why"'
        )
    if not manifest.claims:
        todo.append("state your own figures in [claims] (e.g. macro_f1 = 0.80), if you make any")
    return tuple(todo)


__all__ = ["Upgrade", "upgrade_manifest"]
