"""A trial folder read for governance: its results, files, policy limits and claims.

A *trial folder* is what ``cityx trial`` writes: ``results.json`` (required),
``report.html``, ``events.jsonl`` and the checks' own files. Reading one
never runs anything from it. The policy's limits are read from the policy
file the results name only when that file still has the recorded SHA-256
(otherwise the limits shown would not be the ones that decided).

*Claims* are the vendor's stated figures from the ``[claims]`` table of the
submission's manifest (``cityx.toml``, manifest v2), e.g. ``macro_f1 = 0.80``
or ``scenarios = ["cologne3"]``. A trial folder does not keep the manifest:
it is read from the submission folder the results record, and a manifest
without claims (or one no longer there) gives none.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cityx.core import DataError, InputError, Registry, Severity, TrialResults
from cityx.core.checks import Direction, Threshold

from .checklist import Answer, answer_from_trial, load_checklist, read_answers
from .policy import load_policy
from .requirements import TrialEvidence

RESULTS_FILE = "results.json"
MANIFEST_FILE = "cityx.toml"
Claims = Mapping[str, float | list[str]]


@dataclass(frozen=True, slots=True)
class TrialFolder:
    path: Path
    document: Mapping[str, Any]
    results: TrialResults
    files: Mapping[str, str] = field(default_factory=dict)  # top-level file -> sha256

    @property
    def name(self) -> str:
        return self.results.trial_id or self.path.name


def open_trial(path: Path, *, registry: Registry | None = None) -> TrialFolder:
    """Read a trial folder; InputError when it is not one, DataError when results.json is bad."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such trial folder", where=str(path))
    results_path = path / RESULTS_FILE
    if not results_path.is_file():
        raise InputError(
            "not a trial folder: results.json is missing",
            where=str(path),
            hint="give the folder 'cityx trial --out' wrote",
        )
    try:
        document = json.loads(results_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"results.json is not valid JSON: {exc}", where=str(results_path)) from None
    if not isinstance(document, dict):
        raise DataError("results.json is not a JSON object", where=str(results_path))
    results = TrialResults.from_json(document, registry=registry or Registry())
    files = {
        p.name: sha256_file(p) for p in sorted(path.iterdir()) if p.is_file() and not p.is_symlink()
    }
    return TrialFolder(path, document, results, files)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trial_answers(trial: TrialFolder, checklist: Path | None) -> tuple[Answer, ...]:
    """The checklist answers: the user's file when given (validated, rows named on error),
    else the items the trial's own results answer."""
    items = load_checklist()
    if checklist is not None:
        return tuple(read_answers(checklist, items))
    return tuple(answer_from_trial(items, trial.path))


def policy_limits(results: TrialResults) -> tuple[dict[str, str], Severity, str]:
    """Each check's thresholds as text, the conditional level, and a note on where from."""
    record = results.policy
    if record is None or not record.path:
        return {}, Severity.MEDIUM, "the results name no policy file"
    path = Path(record.path)
    if not path.is_file():
        return {}, Severity.MEDIUM, f"the policy file {path} is no longer there"
    if record.sha256 and sha256_file(path) != record.sha256:
        return {}, Severity.MEDIUM, f"the policy file {path} changed since the trial"
    try:
        policy = load_policy(path)
    except Exception as exc:  # a policy that no longer loads: limits unknown, say why
        return {}, Severity.MEDIUM, f"the policy file does not load: {exc}"
    limits = {
        check: "; ".join(_threshold_text(t) for t in cp.thresholds.values())
        for check, cp in policy.checks.items()
        if cp.thresholds
    }
    return limits, policy.conditional_at, f"policy {policy.id} v{policy.version}"


def _threshold_text(t: Threshold) -> str:
    word = "below" if t.direction is Direction.MIN else "above"
    parts = []
    if t.fail is not None:
        parts.append(f"fails {word} {t.fail:g}")
    if t.conditional is not None:
        parts.append(f"conditional {word} {t.conditional:g}")
    return f"{t.metric} " + ", ".join(parts)


def evidence_of(trial: TrialFolder, *, checklist: Path | None = None) -> TrialEvidence:
    limits, conditional_at, _ = policy_limits(trial.results)
    return TrialEvidence(
        trial.results,
        trial_answers(trial, checklist),
        trial.files,
        limits,
        conditional_at,
    )


def manifest_path(results: TrialResults) -> Path | None:
    folder = results.submission.path if results.submission else None
    if not folder:
        return None
    path = Path(folder) / MANIFEST_FILE
    return path if path.is_file() else None


def read_claims(results: TrialResults) -> Claims | None:
    """The ``[claims]`` table of the submission's manifest, or None when there is none.

    Read raw (the manifest model may not know the table yet): numbers stay
    numbers, lists of text stay lists, anything else is left out.
    """
    path = manifest_path(results)
    if path is None:
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("claims")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(table, Mapping):
        return None
    claims: dict[str, float | list[str]] = {}
    for key, value in table.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            claims[str(key)] = float(value)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            claims[str(key)] = list(value)
    return claims


def datasheet_text(results: TrialResults, *, limit: int = 4000) -> str | None:
    """The datasheet's prose, to show as written (never parsed); None when there is none."""
    path = manifest_path(results)
    if path is None:
        return None
    try:
        manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    data = manifest.get("data")
    name = data.get("datasheet") if isinstance(data, Mapping) else None
    if not isinstance(name, str):
        return None
    sheet = (path.parent / name).resolve()
    if not sheet.is_relative_to(path.parent.resolve()) or not sheet.is_file():
        return None
    text = sheet.read_text(encoding="utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "\n[... cut at 4000 characters]"


__all__ = [
    "MANIFEST_FILE",
    "RESULTS_FILE",
    "Claims",
    "TrialFolder",
    "datasheet_text",
    "evidence_of",
    "manifest_path",
    "open_trial",
    "policy_limits",
    "read_claims",
    "sha256_file",
    "trial_answers",
]
