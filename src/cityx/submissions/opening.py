"""Opening a submission: the one way into a vendor's model, its digest checked first.

:func:`open_submission` reads a submission's manifest and checks that the
artifact on disk is the one its SHA-256 *digest* names, before anything
loads it: a swapped or edited artifact is a :class:`~cityx.core.ManifestError`
(exit 2) and nothing runs. The :class:`Submission` it returns opens the
model in its isolated worker (:mod:`cityx.targets`), which checks the
digest once more just before loading, so a file changed in between is
refused there too. Unlike :func:`~.validate.validate_submission` it does
not read the submission's data files: a red-teamer may bring data of their
own. A Python entry point runs the vendor's code, so it opens only with
``trust_code`` (``--trust-code``), as a pickle needs ``trust_pickle``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cityx.core import MANIFEST_FILE, InputError, Manifest, ManifestError, SystemKind
from cityx.data import file_sha256
from cityx.targets import (
    DEFAULT_LIMITS,
    IsolatedPredictor,
    IsolatedScorer,
    Limits,
    open_predictor,
    open_scorer,
)

from .loading import code_trust_problem
from .manifest_file import read_manifest
from .paths import resolve_inside


@dataclass(frozen=True, slots=True)
class Submission:
    """A submission whose artifact matched its manifest's digest when it was opened."""

    folder: Path
    manifest: Manifest
    artifact: Path
    sha256: str

    @property
    def kind(self) -> SystemKind:
        return self.manifest.system.kind

    def predictor(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        trust_pickle: bool = False,
        trusted: Sequence[str] = (),
        trust_code: bool = False,
    ) -> IsolatedPredictor:
        """The model as a predictor in its isolated worker (not started yet)."""
        self._require_trust(trust_code)
        return open_predictor(
            self.manifest, self.folder, limits=limits, trust_pickle=trust_pickle, trusted=trusted
        )

    def scorer(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        trust_pickle: bool = False,
        trusted: Sequence[str] = (),
        trust_code: bool = False,
    ) -> IsolatedScorer:
        """A controller's model as a candidate scorer in its isolated worker (not started)."""
        self._require_trust(trust_code)
        return open_scorer(
            self.manifest, self.folder, limits=limits, trust_pickle=trust_pickle, trusted=trusted
        )

    def _require_trust(self, trust_code: bool) -> None:
        refused = code_trust_problem(self.folder, self.manifest, trust_code)
        if refused is not None:
            raise ManifestError(refused.message, where=refused.where)


def submission_folder(path: str | Path) -> Path:
    """The submission folder that ``path`` names: the folder, its cityx.toml or its artifact."""
    path = Path(path)
    if path.is_dir():
        return path
    if not path.exists():
        raise InputError("no such submission folder or file", where=str(path))
    if path.name == MANIFEST_FILE or (path.parent / MANIFEST_FILE).is_file():
        return path.parent
    raise InputError(
        f"no {MANIFEST_FILE} beside the model, so what it is and its digest are unknown",
        where=str(path),
        hint="give the submission folder, its cityx.toml or the artifact it declares",
    )


def open_submission(path: str | Path) -> Submission:
    """The submission at ``path`` (folder, cityx.toml or artifact), its digest verified."""
    path = Path(path)
    folder = submission_folder(path)
    manifest, problems = read_manifest(folder)
    if manifest is None:
        first = problems[0]
        raise ManifestError(first.message, where=first.where)
    toml = f"{folder / MANIFEST_FILE}: [artifact]"
    artifact = resolve_inside(folder, manifest.artifact.path)
    if artifact is None:
        raise ManifestError(f"{manifest.artifact.path!r} points outside the folder", where=toml)
    if path.is_file() and path.name != MANIFEST_FILE and path.resolve() != artifact:
        raise InputError(
            f"{MANIFEST_FILE} beside it declares the artifact {manifest.artifact.path!r}",
            where=str(path),
        )
    if not artifact.is_file():
        raise ManifestError(f"the artifact {manifest.artifact.path!r} is missing", where=toml)
    digest = file_sha256(artifact)
    if digest != manifest.artifact.sha256:
        raise ManifestError(
            f"digest mismatch: {manifest.artifact.path} has sha256 {digest}, the manifest says "
            f"{manifest.artifact.sha256}",
            where=f"{toml}.sha256",
            hint="the artifact changed after the manifest was written, or was tampered with; "
            "nothing was loaded",
        )
    return Submission(folder=folder, manifest=manifest, artifact=artifact, sha256=digest)


__all__ = ["Submission", "open_submission", "submission_folder"]
