"""What the governance report needs from outside the trial folder, gathered and checked.

The report (:mod:`cityx.governance.regulator`) is a pure function of what it
is given; this module gathers the rest:

- from a *store* (``--store URL``): the regulator's *ruling* on the trial,
  its long-lived signature checked against a trust store (the city's trust
  document, ``--trust``; without one the ruling is shown as "not checked"),
  and the *checklist answers* the console stored for the trial's system
  version, each an attestation with its author and time;
- from *runs under oversight* (``--oversight RUN_DIR``): the run's
  ``oversight.json`` (the Art. 14(4) table), ``drill.json`` when the run was
  a drill, and its decision log's verification (chain and seals; anchored in
  the trust store when it holds the sealing key, else checked with the run
  folder's own copy of the key and said so).

A ruling whose stored fields differ from the body its signature carries
fails its check: the store row was changed after signing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cityx.core import DataError, InputError
from cityx.governance.checklist import Answer, answer_from_trial, load_checklist
from cityx.governance.external import (
    FAILED,
    NOT_CHECKED,
    RULING_PURPOSE,
    VERIFIED,
    DecisionLogCheck,
    ExternalEvidence,
    OversightRun,
    Ruling,
)
from cityx.governance.regulator import GovernanceReport, build_governance
from cityx.governance.trial_folder import TrialFolder, trial_answers
from cityx.interop import TrustStore, verify_digest
from cityx.oversight.decisions import LOG_FILE, verify_decisions
from cityx.oversight.drills import DRILL_FILE
from cityx.store import ChecklistAnswerRecord, RulingRecord, Store, parse_store_url

OVERSIGHT_FILE = "oversight.json"
_SIGNED_FIELDS = ("decision", "reasons", "conditions", "regulator", "ruled_at")


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything a report needs beyond the trial folder."""

    external: ExternalEvidence
    answers: tuple[Answer, ...] | None = None
    answers_source: str = ""


def check_ruling(record: RulingRecord, trust: TrustStore | None) -> Ruling:
    """A stored ruling with its signature checked (or ``not checked`` without a trust store)."""
    base = Ruling(
        trial_id=record.trial_id,
        decision=record.decision,
        reasons=tuple(record.reasons),
        conditions=tuple(record.conditions),
        regulator=record.regulator,
        ruled_at=record.ruled_at,
        signature=record.signature,
        audit_seq=record.audit_seq,
    )
    if trust is None:
        return _with(
            base, NOT_CHECKED, "no trust store given (--trust): the signature is unchecked"
        )
    checked = verify_digest(record.signature, None, trust, purpose=RULING_PURPOSE)
    kid = checked.kid or ""
    if not checked.ok or checked.statement is None:
        return _with(base, FAILED, checked.detail, kid)
    body = checked.statement.about
    if not isinstance(body, Mapping):
        return _with(base, FAILED, "the signature carries no ruling", kid)
    # The ruling as stored, in the JSON form its signature carries (the trial and the
    # signed fields), so the comparison cannot drift from Ruling.to_json.
    compared = ("trial", *_SIGNED_FIELDS)
    stored = {k: v for k, v in base.to_json().items() if k in compared}
    changed = [k for k, v in stored.items() if body.get(k) != v]
    if changed:
        return _with(
            base,
            FAILED,
            f"the stored ruling differs from what was signed in: {', '.join(changed)}",
            kid,
        )
    warnings = (checked.warning,) if checked.warning else ()
    return _with(base, VERIFIED, checked.detail, kid, warnings)


def _with(
    ruling: Ruling, check: str, detail: str, kid: str = "", warnings: tuple[str, ...] = ()
) -> Ruling:
    return Ruling(
        ruling.trial_id,
        ruling.decision,
        ruling.reasons,
        ruling.conditions,
        ruling.regulator,
        ruling.ruled_at,
        ruling.signature,
        ruling.audit_seq,
        check,
        detail,
        kid,
        warnings,
    )


def stored_answers(
    trial_dir: Path | None, records: Sequence[ChecklistAnswerRecord]
) -> tuple[Answer, ...]:
    """Every checklist item: the stored answer where one was given (an attestation with its
    author and time), else what the trial folder's results answer (blank without one)."""
    by_item = {r.item_id: r for r in records}
    out = []
    for blank in answer_from_trial(load_checklist(), trial_dir):
        r = by_item.get(blank.id)
        if r is None:
            out.append(blank)
            continue
        out.append(
            Answer(
                blank.id,
                blank.principle,
                blank.question,
                r.answer,
                "user",
                f"answered in the console at {r.answered_at} (audit entry {r.audit_seq})",
                r.comment,
                r.author,
            )
        )
    return tuple(out)


def read_oversight_run(folder: Path, trust: TrustStore | None = None) -> OversightRun:
    """A run under oversight from its folder; InputError when it is not one."""
    folder = Path(folder)
    summary_path = folder / OVERSIGHT_FILE
    if not summary_path.is_file() or not (folder / LOG_FILE).is_file():
        raise InputError(
            f"not a run under oversight: {OVERSIGHT_FILE} or {LOG_FILE} is missing",
            where=str(folder),
            hint="give the folder 'cityx oversee run|drill --out' wrote",
        )
    run = _json_object(summary_path)
    drill = _json_object(folder / DRILL_FILE) if (folder / DRILL_FILE).is_file() else None
    oversight = _object(run.get("oversight"))
    art14 = (drill or {}).get("art14") or oversight.get("art14") or []
    violations = _object(oversight.get("violations"))
    spec = _object(run.get("spec"))
    return OversightRun(
        controller=str(spec.get("controller", "")),
        run_id=str(run.get("run_id", folder.name)),
        folder=str(folder),
        scenario=str(spec.get("scenario", "?")),
        seconds=spec.get("seconds"),
        complete=bool(run.get("complete")),
        decision_log=_verify_log(folder, str(run.get("run_id", "")) or None, trust),
        art14=tuple(r for r in art14 if isinstance(r, dict)),
        drill=drill,
        violations=sum(v for v in violations.values() if isinstance(v, int)),
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _about(run: OversightRun, trial: TrialFolder) -> OversightRun:
    """The run, marked as about another system unless its controller is the trial's
    submission folder (oversight.json records the controller's folder, not its digest)."""
    sub = trial.results.submission
    same = bool(sub and sub.path and run.controller) and (
        Path(run.controller).resolve() == Path(str(sub.path)).resolve()  # type: ignore[union-attr]
    )
    return replace(run, same_system=same)


def _verify_log(folder: Path, run: str | None, trust: TrustStore | None) -> DecisionLogCheck:
    checked = verify_decisions(folder, run=run)
    if trust is not None and checked.kid and trust.key(checked.kid) is not None:
        # The trust store holds the sealing key: check the seals against it instead.
        checked = verify_decisions(folder, run=run, trust=trust)
    return DecisionLogCheck(
        ok=checked.ok,
        entries=checked.entries,
        sealed=checked.sealed,
        reason=checked.reason or "",
        key_anchored=checked.key_anchored,
        kid=checked.kid or "",
        warnings=tuple(checked.warnings),
    )


def _json_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"not valid JSON: {exc}", where=str(path)) from None
    if not isinstance(data, dict):
        raise DataError("not a JSON object", where=str(path))
    return data


def gather(
    trial: TrialFolder,
    *,
    store_url: str | None = None,
    store: Store | None = None,
    trust: TrustStore | None = None,
    oversight: Sequence[Path] = (),
    checklist: Path | None = None,
) -> ReportInputs:
    """The ruling and stored answers from a store (``store``, or opened from ``store_url``)
    and the runs under ``oversight``.

    A checklist file (``checklist``) takes precedence over stored answers.
    """
    runs = tuple(_about(read_oversight_run(p, trust), trial) for p in oversight)
    if store is None and store_url is None:
        return ReportInputs(ExternalEvidence(oversight=runs))
    trial_id = trial.results.trial_id or ""
    if store is None:
        assert store_url is not None
        target = parse_store_url(store_url)
        if target.path is not None and not target.memory and not target.path.is_file():
            # Opening would create an empty store: a report reads one, it never makes one.
            raise InputError(
                "no store here", where=target.display, hint="give the server's store URL"
            )
        with Store.open(store_url) as opened:
            record, system, version, answered = _from_store(opened, trial)
    else:
        record, system, version, answered = _from_store(store, trial)
    ruling = None if record is None else check_ruling(record, trust)
    note = "" if ruling else f"the store holds no ruling on trial {trial_id or '?'}"
    external = ExternalEvidence(ruling=ruling, ruling_note=note, oversight=runs)
    if checklist is not None or not answered:
        return ReportInputs(external)
    return ReportInputs(
        external,
        stored_answers(trial.path, answered),
        f"{len(answered)} answer(s) stored in the console for {system} {version} "
        "(attestations, each with its author and time); the rest from the trial's results",
    )


def _from_store(
    store: Store, trial: TrialFolder
) -> tuple[RulingRecord | None, str | None, str | None, list[ChecklistAnswerRecord]]:
    trial_id = trial.results.trial_id or ""
    record = store.ruling(trial_id) if trial_id else None
    stored = store.trial(trial_id) if trial_id else None
    sub = trial.results.submission
    # The store's system id (the server namespaces uploads ORG/SYSTEM) wins over the results'.
    system = stored.system_id if stored else (sub.id if sub else None)
    version = stored.version if stored else (sub.version if sub else None)
    answered = (
        store.checklist_answers(system_id=system, version=version) if system and version else []
    )
    return record, system, version, answered


def build_report(
    trial: TrialFolder,
    *,
    framework: str = "all",
    checklist: Path | None = None,
    store_url: str | None = None,
    trust: TrustStore | None = None,
    oversight: Sequence[Path] = (),
) -> GovernanceReport:
    """The governance report of ``trial`` with everything gathered from outside it."""
    inputs = gather(
        trial, store_url=store_url, trust=trust, oversight=oversight, checklist=checklist
    )
    return build_governance(
        trial,
        framework=framework,
        checklist=checklist,
        answers=inputs.answers,
        answers_source=inputs.answers_source,
        external=inputs.external,
    )


def report_answers(
    trial: TrialFolder, checklist: Path | None, inputs: ReportInputs
) -> tuple[Answer, ...]:
    """The checklist answers a report used (for the evidence package)."""
    return inputs.answers if inputs.answers is not None else trial_answers(trial, checklist)


__all__ = [
    "DRILL_FILE",
    "OVERSIGHT_FILE",
    "ReportInputs",
    "build_report",
    "check_ruling",
    "gather",
    "read_oversight_run",
    "report_answers",
    "stored_answers",
]
