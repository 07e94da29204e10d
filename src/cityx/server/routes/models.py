"""Model access: predictions through the isolated worker, metered, monitored, audited.

A call is refused whole when its rows do not fit in what remains of any of
the caller's budgets for the system (429, with what remains); every answer
carries ``X-Budget-Remaining`` (``unlimited`` when no budget applies). Labels
are returned by default; scores need the ``model.scores`` permission. Every
call, answered or refused, is in the audit log, and so is every alert of the
extraction monitor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cityx.core import DataError, InputError, Manifest, TargetError
from cityx.data import read_table
from cityx.store import SubmissionRecord

from ..access import Caller, ServerState, owner_of, state, visible
from ..identity import Principal
from ..monitor import Reference
from ..policy import Permission, Role
from ..scoring import UNIT_COST, NotServed, normalised, rows_to_batch
from ._router import router

UNLIMITED = "unlimited"


class PredictIn(BaseModel):
    rows: list[dict[str, Any]] = Field(min_length=1)
    scores: bool = False


def _grants(st: ServerState, who: Principal, owner: str) -> dict[str, int]:
    # A vendor querying its own model is not metered: it holds the artifact anyway.
    if owner == who.organisation:
        return {}
    grants = {
        f"user:{who.user}": who.budget if who.budget is not None else st.config.default_budget
    }
    org = st.store.organisation_budget(who.organisation)
    if org is not None:
        grants[f"org:{who.organisation}"] = org
    return grants


def _reference(st: ServerState, sub: SubmissionRecord, manifest: Manifest) -> Reference | None:
    if sub.id not in st.references:
        found = None
        training = manifest.data.training
        if training is not None:
            try:
                table = read_table(Path(sub.path) / training)
                schema = manifest.input_schema()
                scaled = normalised(table[list(schema.names)].to_numpy(float), schema)
                found = Reference.from_rows(scaled)
            except (DataError, InputError, KeyError, ValueError, OSError):
                found = None  # the OOD test is off for this model; PRADA's W still runs
        st.references[sub.id] = found
    return st.references[sub.id]


@router.post("/models/{model_id}/predict", response_model=None)
def predict(
    model_id: int, body: PredictIn, who: Caller, request: Request, response: Response
) -> dict[str, Any] | JSONResponse:
    """Predict the given rows: labels (or values), and scores with the permission."""
    st = state(request)
    sub = st.store.submission(model_id)
    if sub is None:
        raise HTTPException(404, "no such model")
    owner = owner_of(st, sub.system_id)
    visible(st, request, who, owner, "model")
    if body.scores and Permission.MODEL_SCORES not in who.permissions:
        raise HTTPException(403, "scores need the model.scores permission; ask for labels")
    if len(body.rows) > st.config.max_rows:
        raise HTTPException(413, f"at most {st.config.max_rows} rows per call")
    manifest = Manifest.model_validate(sub.manifest)
    try:
        st.pool.check_servable(manifest)
    except NotServed as exc:
        raise HTTPException(422, str(exc)) from None
    schema = manifest.input_schema()
    batch = rows_to_batch(body.rows, schema)
    units = UNIT_COST["predict"] * len(body.rows)
    charge = st.store.charge(
        grants=_grants(st, who, owner),
        system_id=sub.system_id,
        units=units,
        actor=who.actor,
        payload={"model": sub.id, "version": sub.version, "rows": len(body.rows)},
    )
    remaining = UNLIMITED if charge.remaining is None else str(charge.remaining)
    if not charge.spent:
        return JSONResponse(
            {
                "detail": f"the call needs {units} units and {remaining} remain: refused whole",
                "remaining": charge.remaining,
                "needed": units,
            },
            status_code=429,
            headers={"X-Budget-Remaining": remaining},
        )
    response.headers["X-Budget-Remaining"] = remaining
    try:
        prediction = st.pool.predict(sub.id, Path(sub.path), batch, owner=owner)
    except TargetError as exc:
        # The caller learns what failed, not where the server keeps the model.
        detail = str(exc).replace(str(Path(sub.path)), f"model {sub.id}")
        raise HTTPException(502, f"the model failed: {detail}") from None
    values = [v.item() if hasattr(v, "item") else v for v in prediction.values]
    labels = [str(v) for v in values]
    alert = st.monitor.observe(
        who.actor, str(sub.id), normalised(batch, schema), labels, _reference(st, sub, manifest)
    )
    if alert is not None:
        # A red-teamer's probing is authorised: recorded as such, not as an alarm.
        probe = who.role is Role.RED_TEAMER
        st.store.append_audit(
            actor=who.actor,
            action="extraction.probe" if probe else "extraction.alert",
            subject=sub.system_id,
            payload={
                "model": sub.id,
                "queries": alert.queries,
                "ood_rows": alert.ood_rows,
                "p_value": alert.p_value,
                "w": alert.w,
                "reason": alert.reason,
            },
        )
    out: dict[str, Any] = {"model": sub.id, "predictions": values}
    if body.scores and prediction.scores is not None:
        out["classes"] = list(prediction.classes)
        out["scores"] = prediction.scores.tolist()
    return out
