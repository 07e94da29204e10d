"""EU AI Act Art. 14(4)(a)-(e), mapped to what a run under oversight shows.

Each row names the point, what the law asks, the code that serves it and
the evidence this run produced. ``status`` is ``shown`` when the run
exercised it and produced the evidence, ``not shown`` when the feature
exists but this run did not exercise it (never a verdict without evidence).
The governance report reads these rows from a run's results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .commands import Action

if TYPE_CHECKING:
    from .session import OversightResult


def art14_table(
    result: OversightResult, *, drill: Mapping[str, float | None] | None = None
) -> list[dict[str, Any]]:
    """EU AI Act Art. 14(4)(a)-(e): what serves each point and what this run shows.

    ``status`` is ``shown`` when the run produced the evidence, ``not shown``
    when the feature exists but this run did not exercise it.
    """
    commands = result.commands
    acted = {r.command.action for r in commands if r.effective_at_s is not None}
    alerts = result.alerts
    kinds = sorted({a.kind for a in alerts})
    seal = result.decision_records.get("checkpoint", 0)
    stops = [r for r in commands if r.command.action is Action.STOP]
    overrides = acted & {Action.HOLD, Action.PHASE, Action.FIXED_TIME, Action.RESUME}

    def status(shown: bool) -> str:
        return "shown" if shown else "not shown"

    return [
        {
            "point": "14(4)(a)",
            "requirement": "understand capacities and limits; detect anomalies and dysfunctions",
            "served_by": [
                "cityx.oversight.monitor.ConflictMonitor",
                "cityx.defenses.liveness.LivenessGuard",
                "cityx.oversight.alerts.AlertBook",
            ],
            "evidence": {
                "monitor_steps": result.monitor.steps,
                "violations": result.monitor.counts(),
                "alert_kinds": kinds,
                "time_to_alert_s": (drill or {}).get("time_to_alert_s"),
            },
            "status": status(result.monitor.steps > 0),
        },
        {
            "point": "14(4)(b)",
            "requirement": "remain aware of automation bias",
            "served_by": [
                "cityx.oversight.alerts (ai.disagreement, ai.low_margin)",
                "cityx.oversight.decisions.DecisionLog (controller-choice/v1 records)",
                "cityx.oversight.confidence (calibrated confidence per choice)",
                "cityx.oversight.ood (out-of-distribution flag per choice)",
            ],
            "evidence": {
                "choices_logged": result.decision_records.get("choice", 0),
                "bias_alerts": len([a for a in alerts if a.kind.startswith("ai.")]),
                "choices_with_confidence": result.choice_flags.get("with_confidence", 0),
                "choices_ood": result.choice_flags.get("ood", 0),
            },
            "status": status(result.decision_records.get("choice", 0) > 0),
        },
        {
            "point": "14(4)(c)",
            "requirement": "correctly interpret the output",
            "served_by": [
                "cityx.worlds.traffic.choices.ControllerChoice (scores, runner-up, margin)",
                "cityx decisions show",
            ],
            "evidence": {"decision_log": str(result.decisions), "sealed_records": seal > 0},
            "status": status(result.decision_records.get("choice", 0) > 0),
        },
        {
            "point": "14(4)(d)",
            "requirement": "decide not to use; disregard, override or reverse the output",
            "served_by": [
                "cityx.oversight.modes.Supervisor (fixed-time, manual, resume)",
                "cityx.oversight.commands.CommandQueue",
            ],
            "evidence": {
                "effective_overrides": sorted(a.value for a in overrides),
                "time_to_fallback_s": (drill or {}).get("time_to_fallback_s"),
            },
            "status": status(bool(overrides)),
        },
        {
            "point": "14(4)(e)",
            "requirement": "interrupt with a stop that leaves the system in a safe state",
            "served_by": [
                "cityx.oversight.modes.Supervisor (stop)",
                "cityx.worlds.traffic.safety.SafetyEnvelope.stop",
            ],
            "evidence": {
                "stops": len(stops),
                "stops_effective": len([r for r in stops if r.effective_at_s is not None]),
                "stop_to_safe_s": (drill or {}).get("stop_to_safe_s"),
                "violations": result.monitor.total,
            },
            "status": status(any(r.effective_at_s is not None for r in stops)),
        },
    ]


__all__ = ["art14_table"]
