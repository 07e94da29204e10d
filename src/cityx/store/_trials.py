"""Submissions and trials in the store: recorded, begun, finished, read back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cityx.core import StoreError

from ._base import FINDING_KEYS, StoreBase, _digest, _now
from .models import COMPLETE, INCOMPLETE, FindingRow, GateRow, SubmissionRow, TrialRow


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """A trial as stored; ``results`` and ``decision`` are None until it is complete."""

    trial_id: str
    system_id: str
    version: str
    sha256: str
    seed: int
    policy_id: str
    policy_sha256: str
    status: str
    out_dir: str
    plan: Mapping[str, Any]
    results: Mapping[str, Any] | None
    started_at: str
    finished_at: str | None
    decision: str | None


class TrialLog(StoreBase):
    """Submissions and the trials run on them, each change with its audit entry."""

    def record_submission(
        self,
        *,
        system_id: str,
        version: str,
        vendor: str,
        kind: str,
        sha256: str,
        path: str,
        manifest: Mapping[str, Any],
    ) -> None:
        """Record a submission once; recording the same one again changes nothing."""
        manifest_sha256 = _digest(manifest, "the manifest")
        with self._write() as conn:
            if self._submission_id(conn, system_id, version, sha256) is not None:
                return
            conn.execute(
                sa.insert(SubmissionRow).values(
                    system_id=system_id,
                    version=version,
                    vendor=vendor,
                    kind=kind,
                    sha256=sha256,
                    path=path,
                    manifest=dict(manifest),
                    recorded_at=_now(),
                )
            )
            self._append(
                conn,
                actor=self.actor,
                action="submission.recorded",
                subject=f"{system_id}@{version}",
                payload={
                    "system_id": system_id,
                    "version": version,
                    "vendor": vendor,
                    "kind": kind,
                    "sha256": sha256,
                    "manifest_sha256": manifest_sha256,
                },
            )

    def begin_trial(
        self,
        *,
        trial_id: str,
        system_id: str,
        version: str,
        sha256: str,
        seed: int,
        policy_id: str,
        policy_sha256: str,
        out_dir: str,
        plan: Mapping[str, Any],
    ) -> None:
        """Store a new trial as incomplete, with its ``trial.started`` entry.

        The submission must have been recorded. If the process dies before
        :meth:`finish_trial`, the trial stays incomplete: that is its true state.
        """
        plan_sha256 = _digest(plan, "the trial plan")
        with self._write() as conn:
            submission_id = self._submission_id(conn, system_id, version, sha256)
            if submission_id is None:
                raise StoreError(
                    f"submission {system_id}@{version} (sha256 {sha256[:12]}...) "
                    "is not in this store",
                    where=self.display_url,
                    hint="record the submission before starting a trial of it",
                )
            if conn.execute(
                sa.select(TrialRow.trial_id).where(TrialRow.trial_id == trial_id)
            ).first():
                raise StoreError(
                    f"trial {trial_id} already exists",
                    where=self.display_url,
                    hint="every trial needs a new id",
                )
            conn.execute(
                sa.insert(TrialRow).values(
                    trial_id=trial_id,
                    submission_id=submission_id,
                    seed=seed,
                    policy_id=policy_id,
                    policy_sha256=policy_sha256,
                    status=INCOMPLETE,
                    out_dir=out_dir,
                    plan=dict(plan),
                    results=None,
                    started_at=_now(),
                    finished_at=None,
                )
            )
            self._append(
                conn,
                actor=self.actor,
                action="trial.started",
                subject=trial_id,
                payload={
                    "submission": f"{system_id}@{version}",
                    "sha256": sha256,
                    "seed": seed,
                    "policy_id": policy_id,
                    "policy_sha256": policy_sha256,
                    "plan_sha256": plan_sha256,
                },
            )

    def finish_trial(
        self,
        *,
        trial_id: str,
        results: Mapping[str, Any],
        findings: Sequence[Mapping[str, Any]],
        gate: Mapping[str, Any],
    ) -> None:
        """Complete a trial: findings, gate decision, results and two audit entries, at once.

        ``findings`` items need the keys id, check, title, severity and
        principle (each is kept whole); ``gate`` needs decision and reasons.
        If any part fails, none of it is written and the trial stays incomplete.
        """
        for i, finding in enumerate(findings):
            missing = [k for k in FINDING_KEYS if k not in finding]
            if missing:
                raise ValueError(f"finding {i} of trial {trial_id} lacks {', '.join(missing)}")
        if "decision" not in gate or "reasons" not in gate:
            raise ValueError(f"the gate decision of trial {trial_id} needs decision and reasons")
        reasons = [str(r) for r in gate["reasons"]]
        results_sha256 = _digest(results, "the trial results")
        findings_sha256 = _digest(list(findings), "the findings")
        now = _now()
        with self._write() as conn:
            trial = conn.execute(
                sa.select(TrialRow.status, TrialRow.policy_id).where(TrialRow.trial_id == trial_id)
            ).first()
            if trial is None:
                raise StoreError(
                    f"trial {trial_id} is not in this store",
                    where=self.display_url,
                    hint="begin the trial before finishing it",
                )
            if trial.status != INCOMPLETE:
                raise StoreError(
                    f"trial {trial_id} is already complete",
                    where=self.display_url,
                    hint="run a new trial instead",
                )
            policy_id = str(gate.get("policy") or trial.policy_id)
            if findings:
                conn.execute(
                    sa.insert(FindingRow),
                    [
                        {
                            "trial_id": trial_id,
                            "finding_id": str(f["id"]),
                            "ordinal": i,
                            "check_id": str(f["check"]),
                            "title": str(f["title"]),
                            "severity": str(f["severity"]),
                            "principle": str(f["principle"]),
                            "body": dict(f),
                        }
                        for i, f in enumerate(findings)
                    ],
                )
            conn.execute(
                sa.insert(GateRow).values(
                    trial_id=trial_id,
                    decision=str(gate["decision"]),
                    reasons=reasons,
                    policy_id=policy_id,
                    decided_at=now,
                )
            )
            conn.execute(
                sa.update(TrialRow)
                .where(TrialRow.trial_id == trial_id)
                .values(status=COMPLETE, results=dict(results), finished_at=now)
            )
            self._append(
                conn,
                actor=self.actor,
                action="trial.completed",
                subject=trial_id,
                payload={
                    "results_sha256": results_sha256,
                    "findings": len(findings),
                    "findings_sha256": findings_sha256,
                },
            )
            self._append(
                conn,
                actor=self.actor,
                action="gate.decided",
                subject=trial_id,
                payload={
                    "decision": str(gate["decision"]),
                    "policy_id": policy_id,
                    "reasons_sha256": _digest(reasons, "the gate reasons"),
                },
            )

    def trial(self, trial_id: str) -> TrialRecord | None:
        """The trial with this id, or None."""
        found = self._trials(TrialRow.trial_id == trial_id, 1)
        return found[0] if found else None

    def trials(self, limit: int = 50) -> list[TrialRecord]:
        """The newest ``limit`` trials, newest first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit!r}")
        return self._trials(sa.true(), limit)

    def _trials(self, where: sa.ColumnElement[bool], limit: int) -> list[TrialRecord]:
        query = (
            sa.select(
                TrialRow.trial_id,
                SubmissionRow.system_id,
                SubmissionRow.version,
                SubmissionRow.sha256,
                TrialRow.seed,
                TrialRow.policy_id,
                TrialRow.policy_sha256,
                TrialRow.status,
                TrialRow.out_dir,
                TrialRow.plan,
                TrialRow.results,
                TrialRow.started_at,
                TrialRow.finished_at,
                GateRow.decision,
            )
            .join(SubmissionRow, SubmissionRow.id == TrialRow.submission_id)
            .outerjoin(GateRow, GateRow.trial_id == TrialRow.trial_id)
            .where(where)
            .order_by(TrialRow.started_at.desc(), TrialRow.trial_id.desc())
            .limit(limit)
        )
        with self._transaction(write=False) as conn:
            rows = conn.execute(query).all()
        return [TrialRecord(*row) for row in rows]

    def findings(self, trial_id: str) -> list[dict[str, Any]]:
        """The findings of a trial, whole and in the order the trial gave them."""
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(FindingRow.body)
                .where(FindingRow.trial_id == trial_id)
                .order_by(FindingRow.ordinal)
            ).all()
        return [dict(r.body) for r in rows]

    @staticmethod
    def _submission_id(conn: Connection, system_id: str, version: str, sha256: str) -> int | None:
        found = conn.execute(
            sa.select(SubmissionRow.id).where(
                SubmissionRow.system_id == system_id,
                SubmissionRow.version == version,
                SubmissionRow.sha256 == sha256,
            )
        ).scalar()
        return None if found is None else int(found)


__all__ = ["TrialLog", "TrialRecord"]
