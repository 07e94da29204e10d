"""Validating a submission folder before it is admitted to a trial.

Validation never loads the artifact: it checks the manifest, that the
files it names exist inside the folder, the artifact's SHA-256 *digest*,
the training and holdout data against the declared input schema, and a
controller's features against its observation contract. It lists the
manifest's completeness *gaps* (:mod:`.completeness`) as warnings. With
``load`` (:mod:`.loading`) it also loads the model in its isolated worker
and calls it on a few rows that fit the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core import (
    ArtifactFormat,
    DataError,
    Level,
    Manifest,
    ManifestError,
    PluginKind,
    Problem,
    Registry,
    SystemKind,
)
from cityx.data import file_sha256, inspect_table, read_table
from cityx.targets import DEFAULT_LIMITS, Limits

from .completeness import manifest_gaps
from .contract import contract_problems
from .loading import load_problems
from .manifest_file import read_manifest
from .paths import resolve_inside


@dataclass(frozen=True, slots=True)
class Validation:
    """The outcome of validating a submission folder."""

    folder: Path
    manifest: Manifest | None
    problems: tuple[Problem, ...]
    artifact_sha256: str | None = None

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.level is Level.ERROR)

    @property
    def ok(self) -> bool:
        return not self.errors

    def raise_for_errors(self) -> Manifest:
        """The manifest, or a ManifestError naming the first problem."""
        if self.errors or self.manifest is None:
            first = self.errors[0]
            more = len(self.errors) - 1
            hint = f"{more} more: run cityx submission validate {self.folder}" if more else None
            raise ManifestError(first.message, where=first.where, hint=hint)
        return self.manifest

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "ok": self.ok,
            "folder": str(self.folder),
            "submission": None
            if m is None
            else {
                "id": m.system.id,
                "version": m.system.version,
                "kind": m.system.kind.value,
                "sha256": self.artifact_sha256,
            },
            "problems": [p.to_json() for p in self.problems],
        }


def validate_submission(
    folder: Path,
    *,
    load: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    trust_pickle: bool = False,
    trust_code: bool = False,
) -> Validation:
    """Check a submission folder and list every problem found.

    With ``load``, a folder without errors so far also has its model loaded in the
    isolated worker and called on a few schema-valid rows (:mod:`.loading`).
    """
    folder = Path(folder)
    manifest, problems = read_manifest(folder)
    if manifest is None:
        return Validation(folder, None, problems)
    found: list[Problem] = list(problems)
    toml = str(folder / "cityx.toml")
    digest = _check_artifact(folder, manifest, toml, found)
    data = manifest.data
    for field, rel in (
        ("training", data.training),
        ("holdout", data.holdout),
        ("datasheet", data.datasheet),
    ):
        if rel is None:
            continue
        path = _named_file(folder, rel, f"{toml}: [data].{field}", found)
        if path is not None and field != "datasheet":
            _check_data(path, manifest, found)
    found.extend(contract_problems(manifest, toml))
    found.extend(manifest_gaps(folder, manifest))
    if data.training is None and manifest.system.kind is SystemKind.PREDICTOR:
        found.append(
            Problem(
                f"{toml}: [data].training",
                "no training data named: the poisoning and fairness audits cannot run",
                Level.WARNING,
            )
        )
    if load and not any(p.level is Level.ERROR for p in found):
        found.extend(
            load_problems(
                folder,
                manifest,
                limits=limits,
                trust_pickle=trust_pickle,
                trust_code=trust_code,
            )
        )
    return Validation(folder, manifest, tuple(found), digest)


def _named_file(folder: Path, rel: str, where: str, found: list[Problem]) -> Path | None:
    path = resolve_inside(folder, rel)
    if path is None:
        found.append(Problem(where, f"{rel!r} points outside the submission folder"))
    elif not path.is_file():
        found.append(Problem(where, f"file {rel!r} not found in {folder}"))
    else:
        return path
    return None


def _check_artifact(
    folder: Path, manifest: Manifest, toml: str, found: list[Problem]
) -> str | None:
    art = manifest.artifact
    path = resolve_inside(folder, art.path)
    if path is None:
        found.append(
            Problem(
                f"{toml}: [artifact].path", f"{art.path!r} points outside the submission folder"
            )
        )
        return None
    known = Registry().ids(PluginKind.TARGET)
    if art.format not in known:
        found.append(
            Problem(
                f"{toml}: [artifact].format",
                f"no target plugin loads format {art.format!r} (known: {', '.join(known)})",
            )
        )
        return None
    if art.format == ArtifactFormat.ENTRYPOINT and path.is_dir():
        found.append(
            Problem(
                f"{toml}: [artifact].path",
                "an entry point must be one .py file, so that its digest covers all of its code",
            )
        )
        return None
    if not path.is_file():
        found.append(Problem(f"{toml}: [artifact].path", f"file {art.path!r} not found"))
        return None
    if path.stat().st_size == 0:
        found.append(
            Problem(f"{toml}: [artifact].path", f"{art.path!r} is empty (0 bytes): no model")
        )
    digest = file_sha256(path)
    if digest != art.sha256:
        found.append(
            Problem(
                f"{toml}: [artifact].sha256",
                f"digest mismatch: {art.path} has sha256 {digest}, the manifest says {art.sha256} "
                "(the artifact changed after the manifest was written, or was tampered with)",
            )
        )
    return digest


def _check_data(path: Path, manifest: Manifest, found: list[Problem]) -> None:
    try:
        df = read_table(path)
    except DataError as exc:
        found.append(Problem(exc.where or str(path), exc.message))
        return
    result = inspect_table(
        df,
        manifest.input_schema(),
        manifest.output_spec(),
        manifest.outputs.label_column,
        where=str(path),
    )
    found.extend(result.problems)
