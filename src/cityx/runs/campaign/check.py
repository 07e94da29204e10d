"""The trial check ``redteam.campaign``: a small red-team campaign inside a trial."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cityx.assess.sandbox import DEFAULTS as SANDBOX_DEFAULTS
from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CheckStatus,
    Evidence,
    Finding,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Tags,
    status_from,
)

from .baselines import check_baselines, run_baselines
from .details import CampaignDetails, campaign_section
from .plan import CampaignPlan, Thresholds
from .run import CAMPAIGN_FILE, run_campaign

CHECK_DEFAULTS: Mapping[str, Any] = {
    # The network and seeds the controller is judged on (sandbox.nominal's), so that a
    # finding is about the city the controller is for.
    "scenario": SANDBOX_DEFAULTS["scenario"],
    "attacks": [
        "world.phantom-queue",
        "world.hidden-vehicles",
        "world.cv-spoof",
        "world.stale",
        "world.blackout",
    ],
    "intensities": [1.0],
    "seeds": list(SANDBOX_DEFAULTS["seeds"]),
    "seconds": 300,
    # Each faces the same campaign; a finding counts only as far as the submission is
    # also worse than the best of them under the same attack.
    "baselines": list(SANDBOX_DEFAULTS["baselines"]),
    "demand": 1.0,
    "workers": 2,
    "success_pct": 10.0,
    "high_pct": 25.0,
    "critical_pct": 50.0,
}


class RedteamCampaign(Check):
    """A small campaign of world attacks on a submitted controller, inside a trial.

    Its folder is ``redteam/`` beside the trial's ``world/`` folder (a
    temporary folder when the trial gives none); each of the policy's
    ``baselines`` faces the same campaign in ``redteam/baselines/NAME``
    (message-path attacks, which only a submission runs behind, excepted).
    Metrics: the worst mean change of the KPI over the attack groups
    (``worst_change_pct``), the share of groups where the attack succeeded
    (``success_rate``), the share of attacked cells the guard noticed
    (``guard_detection_rate``) and ``failed_cells``. Each group whose harm,
    absolute and against the best baseline under the same attack, may reach
    the success threshold is a finding, its severity decided by the intervals
    (:mod:`.summary`).
    """

    meta: ClassVar[PluginMeta] = PluginMeta(
        id="redteam.campaign",
        kind=PluginKind.CHECK,
        version="1",
        summary="World attacks on the controller (spoofed, hidden, stuck, stale, dark "
        "sensors) paired by seed with clean runs: KPI harm, success, guard detection",
        tags=Tags(
            Principle.SECURITY, NistFunction.MEASURE, ("AML.T0043", "AML.T0015"), ("Art. 15",)
        ),
        supports=frozenset({"controller"}),
    )
    threshold_metrics = ("worst_change_pct", "success_rate", "guard_detection_rate", "failed_cells")
    option_defaults = CHECK_DEFAULTS
    details_type = CampaignDetails
    report_section = staticmethod(campaign_section)
    # cityx.testing.check_plugin runs it small: one attack, one seed, a minute on cologne1.
    conformance_options: ClassVar[Mapping[str, Any]] = {
        "scenario": "cologne1",
        "attacks": ["world.stale"],
        "seeds": [1],
        "seconds": 60,
        "baselines": ["max-pressure"],
    }

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.world is None:
            raise RunError("the red-team check needs the sandbox (cityx[sumo])")
        options = ctx.options
        plan = CampaignPlan(
            controller=str(ctx.submission_dir.resolve()),
            scenarios=(str(options["scenario"]),),
            attacks=tuple(str(a) for a in options["attacks"]),
            intensities=tuple(float(x) for x in options["intensities"]),
            seeds=tuple(int(s) for s in options["seeds"]),
            seconds=int(options["seconds"]),
            demand=float(options["demand"]),
            thresholds=Thresholds(
                success_pct=float(options["success_pct"]),
                high_pct=float(options["high_pct"]),
                critical_pct=float(options["critical_pct"]),
            ),
        )
        root = getattr(ctx.world, "root", None)
        out = (
            Path(root).parent / "redteam"
            if root is not None
            else Path(tempfile.mkdtemp(prefix="cityx-redteam-"))
        )
        workers = int(options["workers"])
        # The trial's limits of the model worker (its --timeout and --memory-mb).
        limits = getattr(ctx.world, "limits", None)
        names = [str(b) for b in options["baselines"]]
        check_baselines(names)
        result = run_campaign(
            plan, out, workers=workers, record=False, limits=limits, trusted_by=ctx.trusted_by
        )
        compared = run_baselines(plan, result, names, workers=workers)
        result, baselines, against = compared.result, compared.baselines, compared.versus
        changes = [g.change_pct.value for g in result.groups]
        known = [c for c in changes if c is not None]
        ok = [c for c in result.cells if c.status == "ok"]
        metrics = {
            "worst_change_pct": Metric(max(known) if known else None, unit="%"),
            "success_rate": Metric(
                sum(bool(c is not None and c >= plan.thresholds.success_pct) for c in changes)
                / len(changes)
                if changes
                else None
            ),
            "guard_detection_rate": Metric(
                sum(c.detection is not None and c.detection.guard for c in ok) / len(ok)
                if ok
                else None
            ),
            "failed_cells": Metric(float(len(result.failed))),
        }
        findings = list(result.findings)
        for name, metric in metrics.items():
            threshold = ctx.threshold_for(name)
            verdict = threshold.judge(metric.value) if threshold else None
            if verdict is not None:
                severity, reason = verdict
                findings.append(
                    Finding(
                        id=f"{self.meta.id}/{name}",
                        check=self.meta.id,
                        title=f"Red-team campaign: {name} out of the policy's limits",
                        severity=severity,
                        severity_reason=reason,
                        tags=self.meta.tags,
                        evidence=Evidence(
                            metrics={name: metric.value}, files=(str(out / CAMPAIGN_FILE),)
                        ),
                    )
                )
        status = status_from(tuple(findings))
        single = [g for g in result.groups if g.n < 2]
        message = ""
        if single and status is CheckStatus.PASSED:
            # One seed gives no interval: what it shows below the threshold is not ruled out.
            status = CheckStatus.UNDETERMINED
            message = f"{len(single)} attack group(s) ran on fewer than 2 seeds: no interval"
        return CheckResult(
            self.meta.id,
            status,
            metrics=metrics,
            findings=tuple(findings),
            details=CampaignDetails(
                str(out / CAMPAIGN_FILE),
                result.groups,
                result.failed,
                baselines={n: r.groups for n, r in baselines.items()},
                versus=tuple(against.values()),
            ),
            message=message,
        )


__all__ = ["CHECK_DEFAULTS", "RedteamCampaign"]
