"""Reading ``cityx.toml`` and turning every mistake into a located problem."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cityx.core import MANIFEST_FILE, Level, Manifest, Problem
from cityx.core.manifest import (
    ArtifactSection,
    ControllerSection,
    DataSection,
    FairnessSection,
    FeatureSpec,
    InputsSection,
    OutputsSection,
    SystemSection,
)

_SECTIONS: dict[str, type[Any]] = {
    "system": SystemSection,
    "artifact": ArtifactSection,
    "inputs": InputsSection,
    "outputs": OutputsSection,
    "data": DataSection,
    "fairness": FairnessSection,
    "controller": ControllerSection,
    "claims": dict,  # free names, so never an unknown field
}


def read_manifest(folder: Path) -> tuple[Manifest | None, tuple[Problem, ...]]:
    """Parse and validate ``folder/cityx.toml``; problems name section and field."""
    path = folder / MANIFEST_FILE
    where = str(path)
    if not folder.is_dir():
        return None, (Problem(str(folder), "not a folder"),)
    if not path.is_file():
        return None, (
            Problem(
                where,
                "missing: every submission needs a cityx.toml "
                "(cityx submission init DIR makes one)",
            ),
        )
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        return None, (Problem(where, f"not valid TOML: {exc}"),)
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        return None, tuple(_problem(where, err, raw) for err in exc.errors())
    if raw.get("schema_version", 1) == 1:
        return manifest, (
            Problem(
                f"{where}: schema_version",
                f"version 1, read as version 2; cityx submission upgrade {folder} rewrites it",
                Level.WARNING,
            ),
        )
    return manifest, ()


def _problem(where: str, err: Any, raw: dict[str, Any]) -> Problem:
    loc = [str(p) for p in err["loc"]]
    field = _field_name(loc)
    message = str(err["msg"])
    if err["type"] == "extra_forbidden":
        message = f"unknown field{_suggest(loc, raw)}"
    elif err["type"] == "missing":
        message = "required field is missing"
    elif "input" in err and _shown(err["input"]):
        message = f"{message} (got {err['input']!r})"
    return Problem(f"{where}: {field}" if field else where, message)


def _shown(value: Any) -> bool:
    """Whether a wrong value is worth quoting: a scalar or a short list, never a whole
    section or the whole manifest (which a check across fields receives)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return True
    return isinstance(value, list) and len(repr(value)) <= 120


def _field_name(loc: list[str]) -> str:
    # ["inputs", "features", "3", "min"] -> "[inputs].features[3].min"
    if not loc:
        return ""
    text = f"[{loc[0]}]" if loc[0] in _SECTIONS else loc[0]
    for part in loc[1:]:
        text += f"[{part}]" if part.isdigit() else f".{part}"
    return text


def _suggest(loc: list[str], raw: dict[str, Any]) -> str:
    name = loc[-1]
    if len(loc) == 1:
        allowed = list(Manifest.model_fields)
    elif loc[0] == "inputs" and len(loc) == 4:
        allowed = list(FeatureSpec.model_fields)
    else:
        section = _SECTIONS.get(loc[0])
        allowed = list(getattr(section, "model_fields", ()))
    close = difflib.get_close_matches(name, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
