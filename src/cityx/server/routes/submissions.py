"""Routes about submissions, trials and rulings; every object is checked for tenancy."""

from __future__ import annotations

import hashlib
import io
import secrets
import shutil
import tarfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import File, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from cityx.core import StoreError
from cityx.store import SubmissionRecord, TrialRecord, now_text
from cityx.submissions import validate_submission

from ..access import Caller, ServerState, owner_of, state, visible
from ..archive import ArchiveError, Limits, unpack
from ..identity import Principal
from ..policy import may_see
from ..rulings import check_ruling, sign_ruling
from ._router import router

_CHUNK = 1 << 16


def _versions(subs: list[SubmissionRecord]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for sub in subs:
        found.setdefault(sub.system_id, []).append(sub.id)
    return found


def _submission_json(sub: SubmissionRecord, owner: str, versions: list[int]) -> dict[str, Any]:
    return {
        "id": sub.id,
        "system": sub.system_id,
        "version": sub.version,
        "organisation": owner,
        "kind": sub.kind,
        "sha256": sub.sha256,
        "format": sub.manifest.get("artifact", {}).get("format"),
        "features": [f.get("name") for f in sub.manifest.get("inputs", {}).get("features", [])],
        "recorded_at": sub.recorded_at,
        "versions": sorted(versions),
    }


def _visible_submission(
    st: ServerState, request: Request, who: Principal, submission_id: int
) -> tuple[SubmissionRecord, str]:
    sub = st.store.submission(submission_id)
    if sub is None:
        raise HTTPException(404, "no such submission")
    owner = owner_of(st, sub.system_id)
    visible(st, request, who, owner, "submission")
    return sub, owner


@router.post("/submissions", status_code=201, response_model=None)
def upload(
    who: Caller, request: Request, archive: Annotated[UploadFile, File()]
) -> dict[str, Any] | JSONResponse:
    """Upload a submission folder as .tar.gz or .zip; it is validated and stored by digest."""
    st = state(request)
    cfg = st.config
    incoming = cfg.data_dir / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(8)
    packed, unpacked = incoming / f"{name}.upload", incoming / name
    digest = hashlib.sha256()
    try:
        with packed.open("xb") as out:
            while chunk := archive.file.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        folder = unpack(
            packed,
            unpacked,
            Limits(max_members=cfg.max_members, max_bytes=cfg.max_unpacked_mb * 2**20),
        )
        validation = validate_submission(folder)
        if not validation.ok or validation.manifest is None:
            st.store.append_audit(
                actor=who.actor,
                action="submission.refused",
                subject=who.organisation,
                payload={"archive_sha256": digest.hexdigest(), "errors": len(validation.errors)},
            )
            return JSONResponse(
                {"problems": [p.to_json() for p in validation.problems]}, status_code=422
            )
        manifest = validation.manifest
        # Content-addressed: the same archive is kept once.
        home = cfg.data_dir / "objects" / digest.hexdigest()
        relative = folder.relative_to(unpacked)
        if not home.exists():
            home.parent.mkdir(parents=True, exist_ok=True)
            unpacked.rename(home)
        stored = home / relative
        # The organisation comes from the caller's identity, never from system.vendor.
        system = f"{who.organisation}/{manifest.system.id}"
        st.store.set_owner(system, who.organisation, actor=who.actor)
        st.store.record_submission(
            system_id=system,
            version=manifest.system.version,
            vendor=who.organisation,
            kind=manifest.system.kind.value,
            sha256=str(validation.artifact_sha256),
            path=str(stored),
            manifest=manifest.model_dump(mode="json"),
        )
        sid = st.store.submission_id(
            system, manifest.system.version, str(validation.artifact_sha256)
        )
        return {
            "id": sid,
            "system": system,
            "version": manifest.system.version,
            "organisation": who.organisation,
        }
    except ArchiveError as exc:
        problem = {"where": "archive", "message": str(exc), "level": "error"}
        return JSONResponse({"problems": [problem]}, status_code=422)
    finally:
        packed.unlink(missing_ok=True)
        shutil.rmtree(unpacked, ignore_errors=True)


@router.get("/submissions")
def list_submissions(who: Caller, request: Request) -> dict[str, Any]:
    """The submissions the caller may see, newest first."""
    st = state(request)
    owners = st.store.owners()
    subs = st.store.submissions()
    versions = _versions(subs)
    out = []
    for sub in subs:
        owner = owners.get(sub.system_id, st.config.city)
        if may_see(who.role, who.organisation, owner):
            out.append(_submission_json(sub, owner, versions[sub.system_id]))
    return {"submissions": out}


@router.get("/submissions/{submission_id}")
def get_submission(submission_id: int, who: Caller, request: Request) -> dict[str, Any]:
    """One submission, with the ids of its system's other versions."""
    st = state(request)
    sub, owner = _visible_submission(st, request, who, submission_id)
    return _submission_json(sub, owner, _versions(st.store.submissions())[sub.system_id])


@router.get("/submissions/{submission_id}/artifact")
def get_artifact(submission_id: int, who: Caller, request: Request) -> StreamingResponse:
    """The submission folder as .tar.gz: for its own organisation only, whatever the role."""
    st = state(request)
    sub, owner = _visible_submission(st, request, who, submission_id)
    if owner != who.organisation:
        raise HTTPException(404, "no such submission")
    folder = Path(sub.path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name, filter=_plain_files)
    st.store.append_audit(
        actor=who.actor,
        action="artifact.downloaded",
        subject=sub.system_id,
        payload={"submission": sub.id, "sha256": sub.sha256},
    )
    buffer.seek(0)
    return StreamingResponse(
        buffer,
        media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="submission-{sub.id}.tar.gz"'},
    )


def _plain_files(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return info if info.isreg() or info.isdir() else None


def _trial_json(trial: TrialRecord, owner: str) -> dict[str, Any]:
    return {
        "id": trial.trial_id,
        "system": trial.system_id,
        "version": trial.version,
        "organisation": owner,
        "sha256": trial.sha256,
        "seed": trial.seed,
        "policy": trial.policy_id,
        "status": trial.status,
        "decision": trial.decision,
        "started_at": trial.started_at,
        "finished_at": trial.finished_at,
    }


def _visible_trial(
    st: ServerState, request: Request, who: Principal, trial_id: str
) -> tuple[TrialRecord, str]:
    trial = st.store.trial(trial_id)
    if trial is None:
        raise HTTPException(404, "no such trial")
    owner = owner_of(st, trial.system_id)
    visible(st, request, who, owner, "trial")
    return trial, owner


@router.get("/trials")
def list_trials(who: Caller, request: Request, limit: int = 100) -> dict[str, Any]:
    """The newest trials the caller may see (at most ``limit``, up to 1000)."""
    st = state(request)
    owners = st.store.owners()
    found = st.store.trials(limit=max(1, min(limit, 1000)))
    out = []
    for trial in found:
        owner = owners.get(trial.system_id, st.config.city)
        if may_see(who.role, who.organisation, owner):
            out.append(_trial_json(trial, owner))
    return {"trials": out}


@router.get("/trials/{trial_id}")
def get_trial(trial_id: str, who: Caller, request: Request) -> dict[str, Any]:
    """One trial with its results, findings and gate decision."""
    st = state(request)
    trial, owner = _visible_trial(st, request, who, trial_id)
    return _trial_json(trial, owner) | {
        "results": trial.results,
        "findings": st.store.findings(trial_id),
    }


class RulingIn(BaseModel):
    decision: str = Field(max_length=32)
    reasons: list[str] = Field(max_length=50)
    conditions: list[str] = Field(default_factory=list, max_length=50)


@router.post("/trials/{trial_id}/ruling", status_code=201)
def post_ruling(trial_id: str, body: RulingIn, who: Caller, request: Request) -> dict[str, Any]:
    """Record the regulator's ruling on a trial, signed with the city's key."""
    st = state(request)
    trial, _owner = _visible_trial(st, request, who, trial_id)
    if trial.status != "complete":
        raise HTTPException(409, "the trial is not complete: rule on a finished trial")
    decision = check_ruling(body.decision, body.reasons, body.conditions)
    key = st.city_key()
    ruled_at = now_text()
    signed = {
        "trial": trial_id,
        "system": trial.system_id,
        "version": trial.version,
        "sha256": trial.sha256,
        "gate": trial.decision,
        "decision": decision.value,
        "reasons": body.reasons,
        "conditions": body.conditions,
        "regulator": who.user,
        "ruled_at": ruled_at,
        "audit_head": st.store.head().hash,
    }
    signature = sign_ruling(signed, key)
    try:
        record = st.store.record_ruling(
            trial_id=trial_id,
            decision=decision.value,
            reasons=body.reasons,
            conditions=body.conditions,
            regulator=who.user,
            ruled_at=ruled_at,
            signature=signature,
            kid=key.kid,
            actor=who.actor,
        )
    except StoreError as exc:
        if "already has a ruling" in exc.message:
            raise HTTPException(409, exc.message) from None
        raise
    return _ruling_json(record) | {"key": key.public_jwk()}


@router.get("/trials/{trial_id}/ruling")
def get_ruling(trial_id: str, who: Caller, request: Request) -> dict[str, Any]:
    """The ruling on a trial, with its signature and the public key that checks it."""
    st = state(request)
    _visible_trial(st, request, who, trial_id)
    record = st.store.ruling(trial_id)
    if record is None:
        raise HTTPException(404, "no ruling on this trial yet")
    return _ruling_json(record) | {"key": st.city_key().public_jwk()}


def _ruling_json(record: Any) -> dict[str, Any]:
    return {
        "trial": record.trial_id,
        "decision": record.decision,
        "reasons": list(record.reasons),
        "conditions": list(record.conditions),
        "regulator": record.regulator,
        "ruled_at": record.ruled_at,
        "signature": record.signature,
        "audit_seq": record.audit_seq,
    }
