"""Running a trial.

A *trial* is one submission tested under a policy with a seed: a
predictor against its holdout data, a controller in the SUMO sandbox
against the baselines (:mod:`.sandbox` runs its worlds). It validates and
admits the submission, runs the policy's checks in order, decides the gate,
and writes ``results.json`` (a :class:`~cityx.core.TrialResults`, schema-
versioned), ``report.html`` and ``events.jsonl`` into its output folder.
The store records the trial as ``incomplete`` when it starts and
``complete`` only in the same transaction that stores its findings, so a
run killed half-way leaves a consistent store.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cityx import __version__
from cityx.core import (
    RESULTS_SCHEMA_VERSION,
    Check,
    CheckContext,
    CheckRecord,
    CheckResult,
    DataRecord,
    FindingRecord,
    GateRecord,
    LabelledBatch,
    Manifest,
    ManifestError,
    PluginKind,
    PluginRecord,
    PolicyError,
    PolicyRecord,
    PrincipleRecord,
    Registry,
    SubmissionRecord,
    SystemKind,
    TrialResults,
    check_seed,
)
from cityx.data import file_sha256, labelled_batch
from cityx.governance.gate import GateDecision, decide, principle_status
from cityx.governance.policy import Policy, load_policy, threshold_allowed
from cityx.governance.report import write_report
from cityx.store import Store
from cityx.submissions import load_problems, resolve_inside, validate_submission
from cityx.targets import Limits, open_predictor

from .events import EventLog
from .sandbox import SandboxRunner
from .submitted import opt_ins

_VERSIONED = (
    "numpy",
    "pandas",
    "scikit-learn",
    "onnxruntime",
    "skops",
    "lightgbm",
    "sqlalchemy",
    "pydantic",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialPlan:
    """What to run: keyword-only so every option is named at the call site."""

    submission: Path
    out: Path | None = None
    data: Path | None = None
    policy: Path | None = None
    seed: int = 0
    store: str | None = None
    trust_pickle: bool = False
    trust_code: bool = False  # let a Python entry point run the vendor's code
    operator: str | None = None  # who runs the trial and gave the opt-ins (None: the OS user)
    limits: Limits = field(default_factory=Limits)
    workers: int = 2  # parallel world runs of a controller trial
    # The system id the results and the store record, when not the manifest's own
    # ``system.id``: the server's namespaced ``ORGANISATION/SYSTEM`` (the manifest's
    # ``system.vendor`` is the vendor's claim, the server's id comes from its identity).
    system_id: str | None = None
    # The trial's id when the caller fixes it (a server job keys its side effects by it).
    trial_id: str | None = None


@dataclass(frozen=True, slots=True)
class TrialOutcome:
    """A finished trial: ``document`` is its results, ``results`` the JSON written for them."""

    trial_id: str
    out: Path
    results_path: Path
    report_path: Path
    gate: GateDecision
    results: dict[str, Any]
    document: TrialResults


def plan_checks(policy: Policy, kind: SystemKind, registry: Registry) -> list[Check]:
    """Instantiate the policy's enabled checks that apply to ``kind``."""
    checks: list[Check] = []
    for check_id, rules in policy.checks.items():
        cls = registry.load(PluginKind.CHECK, check_id)
        declared = tuple(getattr(cls, "threshold_metrics", ()))
        unknown = [m for m in rules.thresholds if not threshold_allowed(m, declared)]
        if unknown:
            raise PolicyError(
                f'checks."{check_id}" sets limits on unknown metric(s) {", ".join(unknown)}',
                where=policy.path,
                hint=f"known: {', '.join(declared) or 'none'}",
            )
        if rules.enabled and (not cls.meta.supports or kind.value in cls.meta.supports):
            cls.configure(rules.options)  # a bad option stops the trial before it starts
            checks.append(cls())
    return checks


def new_trial_id(now: datetime) -> str:
    return f"t-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def run_trial(
    plan: TrialPlan, *, registry: Registry | None = None, progress: Progress | None = None
) -> TrialOutcome:
    """Run one trial end to end; raise a CityxError for bad input before writing anything."""
    started = time.perf_counter()
    seed = check_seed(plan.seed)
    validation = validate_submission(plan.submission)
    manifest = validation.raise_for_errors()
    policy = load_policy(plan.policy)
    # The policy's allow-list decides which installed plugins this trial may load, here,
    # in the model's worker and in the world's child processes alike.
    registry = registry or policy.registry()
    allow = None if registry.allow is None else tuple(sorted(registry.allow))
    checks = plan_checks(policy, manifest.system.kind, registry)
    controller = manifest.system.kind is SystemKind.CONTROLLER
    holdout_path = None if controller else plan.data or _declared_holdout(plan.submission, manifest)
    holdout = _holdout(holdout_path, manifest) if holdout_path else None
    # Admission: the model loads in its isolated worker, and vendor code runs only if the
    # user opted in; refused here, nothing is written. How it answers is for the checks.
    load_start = time.perf_counter()
    refused = load_problems(
        plan.submission,
        manifest,
        limits=plan.limits,
        trust_pickle=plan.trust_pickle,
        trust_code=plan.trust_code,
        plugins_allow=allow,
        call=False,
    )
    if refused:
        raise ManifestError(refused[0].message, where=refused[0].where)
    load_s = time.perf_counter() - load_start
    now = datetime.now(UTC)
    trial_id = plan.trial_id or new_trial_id(now)
    system_id = plan.system_id or manifest.system.id
    out = Path(plan.out) if plan.out else Path("cityx-trials") / trial_id

    with Store.open(plan.store) as store, _folder_until_begun(out) as begun:
        predictor = (
            None
            if controller
            else open_predictor(
                manifest,
                plan.submission,
                limits=plan.limits,
                trust_pickle=plan.trust_pickle,
                plugins_allow=allow,
            )
        )
        with (
            predictor if predictor is not None else nullcontext(),
            EventLog(out / "events.jsonl", trial_id=trial_id) as events,
        ):
            submission = _submission_json(
                plan.submission, manifest, validation.artifact_sha256, system_id
            )
            store.record_submission(
                system_id=system_id,
                version=manifest.system.version,
                vendor=manifest.system.vendor,
                kind=manifest.system.kind.value,
                sha256=submission["sha256"],
                path=submission["path"],
                manifest=manifest.model_dump(mode="json"),
            )
            store.begin_trial(
                trial_id=trial_id,
                system_id=system_id,
                version=manifest.system.version,
                sha256=submission["sha256"],
                seed=seed,
                policy_id=policy.id,
                policy_sha256=policy.sha256,
                out_dir=str(out.resolve()),
                plan={
                    "checks": [c.meta.id for c in checks],
                    "data": str(holdout_path) if holdout_path else None,
                },
            )
            begun.append(True)
            events.emit("trial.started", submission=submission, seed=seed, policy=policy.id)
            results = _run_checks(
                checks,
                policy,
                events,
                progress,
                CheckContext(
                    submission_dir=plan.submission,
                    manifest=manifest,
                    seed=seed,
                    problems=validation.problems,
                    load_s=load_s,
                    trusted_by=_trusted_by(plan),
                    predictor=predictor,
                    holdout=holdout,
                    world=SandboxRunner(
                        plan.submission,
                        out / "world",
                        workers=plan.workers,
                        plugins_allow=allow,
                        limits=plan.limits,
                        trusted_by=_trusted_by(plan),
                    )
                    if controller
                    else None,
                ),
            )
            gate = decide(
                results,
                policy,
                planned=[c.meta.id for c in checks],
                waived={c.meta.id: why for c in checks if (why := c.waiver(manifest)) is not None},
            )
            document = _trial_results(
                registry,
                trial_id=trial_id,
                now=now,
                submission=submission,
                seed=seed,
                policy=policy,
                holdout_path=holdout_path,
                holdout=holdout,
                checks=checks,
                target=manifest.artifact.format,
                results=results,
                gate=gate,
                wall_s=time.perf_counter() - started,
            )
            written = document.to_json()
            results_path = _write_json_atomic(out / "results.json", written)
            # From the JSON, as anyone re-rendering results.json later would: the same bytes.
            report_path = write_report(written, out / "report.html", registry=registry)
            store.finish_trial(
                trial_id=trial_id,
                results=written,
                findings=written["findings"],
                gate=gate.to_json(),
            )
            events.emit(
                "trial.finished",
                decision=gate.decision.value,
                results=str(results_path),
                report=str(report_path),
            )
    return TrialOutcome(trial_id, out, results_path, report_path, gate, written, document)


@contextmanager
def _folder_until_begun(out: Path) -> Iterator[list[bool]]:
    """Make ``out``; if the trial fails before the store records it as begun, remove the
    folder again (when this made it): a refused trial leaves nothing behind."""
    fresh = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    begun: list[bool] = []
    try:
        yield begun
    except BaseException:
        if fresh and not begun:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _trusted_by(plan: TrialPlan) -> dict[str, str]:
    """The opt-ins this trial was given (``--trust-code``, ``--trust-pickle``), and by whom."""
    return opt_ins(
        trust_code=plan.trust_code, trust_pickle=plan.trust_pickle, operator=plan.operator
    )


def _declared_holdout(folder: Path, manifest: Manifest) -> Path:
    rel = manifest.data.holdout
    path = resolve_inside(folder, rel) if rel else None
    if path is None:  # validation guarantees it for predictors
        raise PolicyError("this submission declares no holdout data", where=str(folder))
    return path


def _holdout(path: Path, manifest: Manifest) -> LabelledBatch:
    return labelled_batch(
        path, manifest.input_schema(), manifest.output_spec(), manifest.outputs.label_column
    )


def _run_checks(
    checks: Sequence[Check],
    policy: Policy,
    events: EventLog,
    progress: Progress | None,
    base: CheckContext,
) -> list[CheckResult]:
    results: list[CheckResult] = []
    for i, check in enumerate(checks):
        cid = check.meta.id
        if progress:
            progress(cid, i, len(checks))
        rules = policy.checks[cid]
        ctx = replace(base, thresholds=rules.thresholds, options=rules.options)
        events.emit("check.started", check=cid)
        result = check.run(ctx)
        events.emit(
            "check.finished",
            check=cid,
            status=result.status.value,
            findings=[f.id for f in result.findings],
            wall_s=round(result.wall_s, 4),
        )
        results.append(result)
    if progress:
        progress("done", len(checks), len(checks))
    return results


def _submission_json(
    folder: Path, manifest: Manifest, sha256: str | None, system_id: str
) -> dict[str, Any]:
    return {
        "id": system_id,
        "version": manifest.system.version,
        "vendor": manifest.system.vendor,
        "kind": manifest.system.kind.value,
        "sha256": sha256 or manifest.artifact.sha256,
        "intended_use": manifest.system.intended_use,
        "path": str(folder.resolve()),
    }


def versions() -> dict[str, str]:
    found = {
        "cityx": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def _trial_results(
    registry: Registry,
    *,
    trial_id: str,
    now: datetime,
    submission: dict[str, Any],
    seed: int,
    policy: Policy,
    holdout_path: Path | None,
    holdout: LabelledBatch | None,
    checks: Sequence[Check],
    target: str,
    results: Sequence[CheckResult],
    gate: GateDecision,
    wall_s: float,
) -> TrialResults:
    tested = {c.meta.id: c.tested_principles() for c in checks}
    return TrialResults(
        schema_version=RESULTS_SCHEMA_VERSION,
        trial_id=trial_id,
        created_at=now.isoformat().replace("+00:00", "Z"),
        status="complete",
        wall_s=round(wall_s, 3),
        submission=SubmissionRecord.from_json(submission),
        seed=seed,
        versions=versions(),
        policy=PolicyRecord(policy.id, policy.version, policy.path, policy.sha256),
        data={
            "holdout": DataRecord(
                str(holdout_path),
                file_sha256(holdout_path),
                int(holdout.features.shape[0]) + holdout.rejected_rows,
                holdout.rejected_rows,
            )
        }
        if holdout_path is not None and holdout is not None
        else {},
        # The checks that ran, and the target plugin that loaded the artifact.
        plugins=tuple(
            PluginRecord.from_json(registry.record(kind, plugin_id))
            for kind, plugin_id in [
                *((PluginKind.CHECK, c.meta.id) for c in checks),
                (PluginKind.TARGET, target),
            ]
        ),
        checks=tuple(CheckRecord.of(r) for r in results),
        findings=tuple(FindingRecord.of(f) for r in results for f in r.findings),
        gate=GateRecord.from_json(gate.to_json()),
        principles={
            name: PrincipleRecord.from_json(row)
            for name, row in principle_status(results, tested, policy).items()
        },
        command=" ".join(
            [
                "cityx",
                "trial",
                str(submission["path"]),
                "--seed",
                str(seed),
                "--policy",
                policy.path,
                *(["--data", str(holdout_path)] if holdout_path is not None else []),
            ]
        ),
    )


def _write_json_atomic(path: Path, document: dict[str, Any]) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
