"""The signed evidence package of a trial, and its verification.

An *evidence package* is a folder (or, with ``archive``, one ``.tar.gz``)
that lets an auditor show later that a regulator's evidence was not
changed. It holds:

- ``results.json``, the governance report as ``report.html`` and
  ``report.pdf``, the trial's own ``trial-report.html``;
- the *ledgers*: the trial's ``*.jsonl`` logs (``events.jsonl``, and any
  decision log the trial wrote);
- ``policy.toml`` (when the policy file still has the recorded digest),
  ``checklist.json`` (the answers the report used: a file, the answers the
  console stored with their authors, or the trial's own), ``audit-head.json``
  (the audit log's entry count and newest hash, when given);
- ``ruling.json``, when the store holds the regulator's ruling on the trial:
  the ruling as stored with its long-lived signature (purpose
  ``server.ruling``), and the signature's check at packing time;
- ``oversight/RUN_ID/``: for each run under oversight given, its
  ``oversight.json``, ``drill.json`` (a drill) and ``decisions.jsonl`` (the
  sealed decision log), whose verification the report shows;
- ``artifacts.json``: the SHA-256 of every file of the trial folder and
  of the submitted artifact (digests only: the files stay where they are);
- ``manifest.json``: the SHA-256 of every other file of the package, with
  the signer's issuer and kid and the signing time; and
- ``manifest.jws``: a long-lived detached signature
  (:mod:`cityx.interop.longterm`, purpose :data:`PURPOSE`) over the
  SHA-256 of ``manifest.json``'s bytes, made with the city's key.

*Verification* reads the package without extracting it (an archive's
members are read in memory, and any member that is not a plain file or
folder, or whose path is absolute or climbs out, fails it), checks the
signature against a trust store (:mod:`cityx.interop.trust`), then every
digest, and names every file added, removed or changed; a ``ruling.json``'s
own signature is checked against the same trust store, and a ruling that
does not verify fails the package, naming ``ruling.json``. A signer unknown
to the trust store, outside its key's window, or whose key was revoked
or marked compromised at or before the signing time, fails it; a key
revoked after it signed passes, with a warning. The signing time is the
signer's own word: a thief holding a compromised key could backdate it,
which only an external timestamp would rule out.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cityx.core import InputError
from cityx.core.audit import AuditHead
from cityx.governance.checklist import write_answers
from cityx.governance.external import RULING_PURPOSE
from cityx.governance.regulator import build_governance, render, write_atomic
from cityx.governance.trial_folder import open_trial, sha256_file
from cityx.interop import LongReason, SigningKey, TrustStore, sign_digest, verify_digest
from cityx.store import Store

from .report_inputs import DRILL_FILE, OVERSIGHT_FILE, gather, report_answers

PACKAGE_FORMAT = "cityx.evidence/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.jws"
PURPOSE = "evidence.manifest"
RULING_FILE = "ruling.json"
_MAX_MEMBER = 256 * 1024 * 1024  # bytes: a package member larger than this is refused
_MAX_MEMBERS = 10_000


@dataclass(frozen=True, slots=True)
class Packed:
    path: Path
    files: Mapping[str, str]
    kid: str

    def to_json(self) -> dict[str, Any]:
        return {"package": str(self.path), "files": dict(self.files), "kid": self.kid}


def pack_evidence(
    trial_dir: Path,
    key: SigningKey,
    out: Path,
    *,
    archive: bool = False,
    checklist: Path | None = None,
    audit_head: AuditHead | None = None,
    pdf: bool = True,
    trust: TrustStore | None = None,
    now: float | None = None,
    store_url: str | None = None,
    store: Store | None = None,
    oversight: Sequence[Path] = (),
) -> Packed:
    """Write the signed evidence package of ``trial_dir`` to ``out`` (a folder, or a
    ``.tar.gz`` with ``archive``). ``trust``, when given, must hold ``key`` unrevoked,
    and checks the ruling's signature; ``store_url`` gives the ruling and the console's
    checklist answers; ``oversight`` the runs under oversight to include."""
    if trust is not None:
        trusted = trust.key(key.kid)
        if trusted is None or trusted.x != key.public_jwk()["x"]:
            raise InputError(
                f"the key {key.kid} ({key.issuer}) is not in the trust store",
                hint="add its trust document first, or sign with a trusted key",
            )
        if trusted.revoked_at is not None:
            raise InputError(f"the key {key.kid} is revoked in the trust store")
    out = Path(out)
    if out.exists():
        raise InputError("the output already exists", where=str(out), hint="choose a new path")
    trial = open_trial(trial_dir)
    inputs = gather(
        trial,
        store_url=store_url,
        store=store,
        trust=trust,
        oversight=oversight,
        checklist=checklist,
    )
    report = build_governance(
        trial,
        checklist=checklist,
        answers=inputs.answers,
        answers_source=inputs.answers_source,
        external=inputs.external,
    )
    contents: dict[str, bytes] = {
        "results.json": (trial.path / "results.json").read_bytes(),
        "report.html": render(report, "html"),
    }
    if pdf:
        contents["report.pdf"] = render(report, "pdf")
    if (trial.path / "report.html").is_file():
        contents["trial-report.html"] = (trial.path / "report.html").read_bytes()
    for ledger in sorted(trial.path.glob("*.jsonl")):
        if ledger.is_file() and not ledger.is_symlink():
            contents[f"ledgers/{ledger.name}"] = ledger.read_bytes()
    policy = trial.results.policy
    if policy and policy.path and Path(policy.path).is_file():
        data = Path(policy.path).read_bytes()
        if not policy.sha256 or _sha(data) == policy.sha256:
            contents["policy.toml"] = data
    contents["checklist.json"] = _answers_json(report_answers(trial, checklist, inputs))
    if inputs.external.ruling is not None:
        contents[RULING_FILE] = _json_bytes(inputs.external.ruling.to_json())
    for run in inputs.external.oversight:
        folder = Path(run.folder)
        for name in (OVERSIGHT_FILE, DRILL_FILE, "decisions.jsonl"):
            if (folder / name).is_file() and not (folder / name).is_symlink():
                contents[f"oversight/{_safe(run.run_id)}/{name}"] = (folder / name).read_bytes()
    if audit_head is not None:
        contents["audit-head.json"] = _json_bytes(
            {"entries": audit_head.entries, "hash": audit_head.hash}
        )
    contents["artifacts.json"] = _json_bytes(_artifact_digests(trial.path, trial.results))
    signed_at = time.time() if now is None else now
    digests = {name: _sha(data) for name, data in sorted(contents.items())}
    manifest: dict[str, Any] = {
        "format": PACKAGE_FORMAT,
        "trial_id": trial.results.trial_id,
        "signed_at": datetime.fromtimestamp(signed_at, UTC).isoformat().replace("+00:00", "Z"),
        "signer": {"issuer": key.issuer, "kid": key.kid},
        "files": digests,
    }
    contents[MANIFEST] = _json_bytes(manifest)
    token = sign_digest(_sha(contents[MANIFEST]), key, purpose=PURPOSE, now=signed_at)
    contents[SIGNATURE] = (token + "\n").encode("ascii")
    if archive:
        _write_archive(contents, out)
    else:
        _write_folder(contents, out)
    return Packed(out, digests, key.kid)


def _safe(name: str) -> str:
    """A run id as one path segment of the package."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".")
    return cleaned or "run"


def _answers_json(answers: Any) -> bytes:
    # write_answers owns the checklist's JSON form; go through a temporary file to reuse it.
    with tempfile.TemporaryDirectory() as tmp:
        path = write_answers(answers, Path(tmp) / "checklist.json")
        return path.read_bytes()


def _artifact_digests(trial: Path, results: Any) -> dict[str, Any]:
    files = {
        p.relative_to(trial).as_posix(): sha256_file(p)
        for p in sorted(trial.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    sub = results.submission
    return {
        "trial_folder": files,
        "submission_artifact": {"sha256": sub.sha256 if sub else None},
    }


def _write_folder(contents: Mapping[str, bytes], out: Path) -> None:
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for name, data in contents.items():
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        tmp.rename(out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(f"cannot write the package: {exc}", where=str(out)) from exc


def _write_archive(contents: Mapping[str, bytes], out: Path) -> None:
    buffer = io.BytesIO()
    # Fixed metadata (time 0, owner 0): the same contents give the same archive.
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(contents.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    write_atomic(buffer.getvalue(), out)


# -- verification ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """Why verification failed: ``subject`` names the file or the key."""

    subject: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Verified:
    package: str
    ok: bool
    problems: tuple[Problem, ...] = ()
    warnings: tuple[str, ...] = ()
    signer: Mapping[str, str] = field(default_factory=dict)
    files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "warnings": list(self.warnings),
            "signer": dict(self.signer),
            "files": self.files,
        }

    def text(self) -> str:
        lines = [f"warning: {w}" for w in self.warnings]
        if self.ok:
            lines.append(
                f"evidence package intact: {self.files} files, signed by "
                f"{self.signer.get('issuer', '?')} (kid {self.signer.get('kid', '?')})"
            )
        else:
            lines += [f"{p.subject}: {p.reason}" for p in self.problems]
            lines.append(f"evidence package NOT intact: {len(self.problems)} problem(s)")
        return "\n".join(lines)


def read_package(path: Path) -> dict[str, bytes]:
    """Every file of a package folder or ``.tar.gz``, by its relative path, read in memory.

    A symlink, a special file, an absolute or climbing path, or an oversized
    member is a :class:`TamperedPackage`; a path that does not exist or an
    unreadable archive is an InputError.
    """
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if path.is_file():
        return _read_archive(path)
    raise InputError("no such evidence package", where=str(path))


class TamperedPackage(Exception):
    """A package whose form is unsafe; carries the member it names."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.problem = Problem(subject, reason)


def _read_folder(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for p in sorted(root.rglob("*")):
        name = p.relative_to(root).as_posix()
        if p.is_symlink():
            raise TamperedPackage(name, "is a symbolic link")
        if p.is_dir():
            continue
        if not p.is_file():
            raise TamperedPackage(name, "is not a regular file")
        found[name] = p.read_bytes()
    return found


def _read_archive(path: Path) -> dict[str, bytes]:
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .tar.gz package: {exc}", where=str(path)) from None
    found: dict[str, bytes] = {}
    try:
        with tar:
            for i, member in enumerate(tar):
                if i >= _MAX_MEMBERS:
                    raise TamperedPackage(str(path), f"more than {_MAX_MEMBERS} members")
                name = member.name
                pure = PurePosixPath(name)
                if pure.is_absolute() or ".." in pure.parts or "\\" in name:
                    raise TamperedPackage(name, "path is absolute or leaves the package")
                if member.isdir():
                    continue
                if not member.isfile():
                    raise TamperedPackage(name, "is a link or special file, not a regular file")
                if member.size > _MAX_MEMBER:
                    raise TamperedPackage(name, f"is larger than {_MAX_MEMBER} bytes")
                handle = tar.extractfile(member)
                if handle is None:
                    raise TamperedPackage(name, "cannot be read")
                key = pure.as_posix()
                if key in found:
                    raise TamperedPackage(key, "appears twice in the archive")
                found[key] = handle.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise TamperedPackage(str(path), f"the archive is damaged: {exc}") from None
    return found


_KEY_REASONS = frozenset(
    {
        LongReason.UNKNOWN_KEY,
        LongReason.ISSUER_MISMATCH,
        LongReason.KEY_NOT_YET_VALID,
        LongReason.KEY_EXPIRED,
        LongReason.REVOKED_BEFORE_SIGNING,
        LongReason.COMPROMISED_BEFORE_SIGNING,
    }
)


def verify_evidence(path: Path, trust: TrustStore) -> Verified:
    """Check a package's signature and every digest; never raises for a tampered package."""
    where = str(path)
    try:
        files = read_package(path)
    except TamperedPackage as exc:
        return Verified(where, False, (exc.problem,))
    problems: list[Problem] = []
    warnings: list[str] = []
    manifest_bytes = files.get(MANIFEST)
    token_bytes = files.get(SIGNATURE)
    if manifest_bytes is None or token_bytes is None:
        missing = [n for n in (MANIFEST, SIGNATURE) if n not in files]
        return Verified(
            where,
            False,
            tuple(
                Problem(n, "is missing: not an evidence package, or it was removed")
                for n in missing
            ),
        )
    try:
        token = token_bytes.decode("ascii")
    except UnicodeDecodeError:
        return Verified(where, False, (Problem(SIGNATURE, "is not a compact JWS (not ASCII)"),))
    checked = verify_digest(token, _sha(manifest_bytes), trust, purpose=PURPOSE)
    kid = checked.kid or "?"
    signer = {"issuer": checked.issuer or "?", "kid": kid}
    if checked.reason is LongReason.DIGEST_MISMATCH:
        return Verified(
            where, False, (Problem(MANIFEST, "differs from the signed manifest"),), (), signer
        )
    if not checked.ok:
        # Key problems name the key; a broken or forged signature names the file.
        on_key = checked.reason in _KEY_REASONS
        subject = f"key {kid}" if on_key else SIGNATURE
        reason = (
            "the signer is unknown to the trust store"
            if checked.reason is LongReason.UNKNOWN_KEY
            else checked.detail
        )
        return Verified(where, False, (Problem(subject, reason),), (), signer)
    if checked.warning is not None:
        warnings.append(checked.warning)
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict):
        return Verified(where, False, (Problem(MANIFEST, "is not a JSON object"),), (), signer)
    if manifest.get("format") != PACKAGE_FORMAT:
        problems.append(Problem(MANIFEST, f"format is not {PACKAGE_FORMAT!r}"))
    if manifest.get("signer") != {"issuer": signer["issuer"], "kid": kid}:
        problems.append(Problem(MANIFEST, f"names another signer than key {kid}"))
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        problems.append(Problem(MANIFEST, "lists no files"))
        listed = {}
    for name, digest in sorted(listed.items()):
        data = files.get(name)
        if data is None:
            problems.append(Problem(name, "was removed"))
        elif _sha(data) != digest:
            problems.append(Problem(name, "was changed (its SHA-256 differs from the manifest)"))
    for name in sorted(set(files) - set(listed) - {MANIFEST, SIGNATURE}):
        problems.append(Problem(name, "was added (it is not in the manifest)"))
    if RULING_FILE in files and RULING_FILE in listed:
        problem = _ruling_problem(files[RULING_FILE], trust)
        if problem is not None:
            problems.append(problem)
    return Verified(where, not problems, tuple(problems), tuple(warnings), signer, len(listed))


def _ruling_problem(data: bytes, trust: TrustStore) -> Problem | None:
    """The packed ruling's own signature, checked against the auditor's trust store."""
    try:
        ruling = json.loads(data)
        token = str(ruling["signature"])
    except (ValueError, KeyError, TypeError):
        return Problem(RULING_FILE, "is not a ruling with a signature")
    checked = verify_digest(token, None, trust, purpose=RULING_PURPOSE)
    if not checked.ok or checked.statement is None:
        return Problem(RULING_FILE, f"the ruling's signature does not verify: {checked.detail}")
    body = checked.statement.about
    fields = ("decision", "reasons", "conditions", "regulator", "ruled_at")
    if not isinstance(body, dict) or any(body.get(k) != ruling.get(k) for k in fields):
        return Problem(RULING_FILE, "differs from the ruling its signature carries")
    return None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


__all__ = [
    "MANIFEST",
    "PACKAGE_FORMAT",
    "RULING_FILE",
    "SIGNATURE",
    "Packed",
    "Problem",
    "TamperedPackage",
    "Verified",
    "pack_evidence",
    "read_package",
    "verify_evidence",
]
