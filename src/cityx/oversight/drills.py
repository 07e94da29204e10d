"""Oversight drills: scripted incidents, a scripted operator, measured outcomes.

A *drill* runs a scenario under oversight with an incident injected on
the sensor path (a registry attack: ``world.blackout`` by default, from
``attack_start_s``) and a scripted *operator policy*: it answers every
sensor alert by putting the alerted intersection on the fixed-time plan
(the suggested action), and at ``stop_at_s`` it stops every intersection
(the overseer's "stop" of Art. 14(4)(e)), with the stop's reason sent
afterwards. It measures:

- ``time_to_alert_s``: from the incident to the first sensor alert;
- ``time_to_fallback_s``: from that alert to the fixed-time plan being
  in force at the alerted intersection;
- ``stop_to_safe_s``: from the stop to all-red on the street, per
  intersection (the largest), and ``stop_within_clearance``: whether each
  stop reached all-red within the minimum green still owed plus the
  program's yellow and all-red;
- the monitor's violations, which must all be 0, and whether the run is
  complete.

Its result carries the Art. 14(4)(a)-(e) table (:mod:`.art14`) with the
drill's measures in it, and is written beside the run's ``oversight.json``
as ``drill.json`` (:data:`DRILL_FILE`), which the governance report reads.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .alerts import Alert
from .art14 import art14_table
from .commands import ALL, Action, CommandQueue, CommandRecord, OperatorCommand
from .session import OversightResult, OversightSpec, run_oversight

DRILL_SCHEMA = "oversight-drill/v1"
DRILL_FILE = "drill.json"
DRILL_OPERATOR = "urn:cityx:operator:drill"
SENSOR_ALERTS = ("sensor.dead", "sensor.stale", "sensor.implausible")
# Longest the envelope may take to reach all-red: the minimum green still owed,
# the yellow and the all-red (the drill checks each stop against its own program).
_STEP_S = 1.0


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    """What a drill measured; ``passed`` when every goal below was met."""

    result: OversightResult
    attack: str
    attack_start_s: float
    stop_at_s: float | None
    time_to_alert_s: float | None
    time_to_fallback_s: float | None
    stop_to_safe_s: float | None
    stop_within_clearance: bool | None
    alerts_before_attack: int

    @property
    def violations(self) -> int:
        return self.result.monitor.total

    @property
    def passed(self) -> bool:
        stop_ok = self.stop_at_s is None or bool(self.stop_within_clearance)
        return (
            self.violations == 0
            and self.result.complete
            and self.time_to_alert_s is not None
            and self.time_to_fallback_s is not None
            and stop_ok
        )

    def measures(self) -> dict[str, float | None]:
        return {
            "time_to_alert_s": self.time_to_alert_s,
            "time_to_fallback_s": self.time_to_fallback_s,
            "stop_to_safe_s": self.stop_to_safe_s,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": DRILL_SCHEMA,
            "attack": self.attack,
            "attack_start_s": self.attack_start_s,
            "stop_at_s": self.stop_at_s,
            "time_to_alert_s": self.time_to_alert_s,
            "time_to_fallback_s": self.time_to_fallback_s,
            "stop_to_safe_s": self.stop_to_safe_s,
            "stop_within_clearance": self.stop_within_clearance,
            "alerts_before_attack": self.alerts_before_attack,
            "violations": self.result.monitor.counts(),
            "complete": self.result.complete,
            "passed": self.passed,
            "art14": art14_table(self.result, drill=self.measures()),
            "run": self.result.to_json(),
        }


class FallbackOnAlert:
    """The drill's operator: fixed-time at an intersection with a sensor alert; stop at a time.

    With ``resume_after_s`` it resumes adaptive control at an intersection
    once its sensor alerts have been clear that long (hysteresis, so that an
    intersection does not flap between modes); without, a human decides.
    """

    def __init__(
        self, *, stop_at_s: float | None = None, resume_after_s: float | None = None
    ) -> None:
        self.stop_at_s = stop_at_s
        self.resume_after_s = resume_after_s
        self.stop_id: int | None = None
        self.fallbacks: dict[str, int] = {}  # intersection -> command id
        self._active: dict[str, set[int]] = {}  # intersection -> active sensor alert ids
        self._clear_since: dict[str, float] = {}

    def __call__(
        self,
        now: float,
        raised: tuple[Alert, ...],
        cleared: tuple[Alert, ...],
        queue: CommandQueue,
    ) -> None:
        for alert in raised:
            if alert.kind in SENSOR_ALERTS:
                self._active.setdefault(alert.intersection, set()).add(alert.id)
                self._clear_since.pop(alert.intersection, None)
        for alert in cleared:
            ids = self._active.get(alert.intersection, set())
            ids.discard(alert.id)
            if not ids and alert.intersection in self.fallbacks:
                self._clear_since[alert.intersection] = now
        if self.resume_after_s is not None:
            for tls, since in list(self._clear_since.items()):
                if now - since >= self.resume_after_s and self.stop_id is None:
                    queue.submit(
                        OperatorCommand(
                            tls,
                            Action.RESUME,
                            at_s=now,
                            reason=f"sensor alerts clear for {self.resume_after_s:g} s",
                            operator=DRILL_OPERATOR,
                        )
                    )
                    del self._clear_since[tls]
                    del self.fallbacks[tls]
        for alert in raised:
            if alert.kind in SENSOR_ALERTS and alert.intersection not in self.fallbacks:
                self.fallbacks[alert.intersection] = queue.submit(
                    OperatorCommand(
                        intersection=alert.intersection,
                        action=Action.FIXED_TIME,
                        at_s=now,
                        reason=f"alert {alert.id}: {alert.message}",
                        operator=DRILL_OPERATOR,
                    )
                )
        if self.stop_at_s is not None and self.stop_id is None and now >= self.stop_at_s:
            # The stop goes first; its reason follows (a stop must never wait for words).
            self.stop_id = queue.submit(
                OperatorCommand(ALL, Action.STOP, at_s=now, operator=DRILL_OPERATOR)
            )
            queue.annotate(
                self.stop_id, "drill: operator stops the junctions", operator=DRILL_OPERATOR
            )


def _stop_bound(result: OversightResult, record: CommandRecord) -> float:
    """The minimum green still owed (at most the envelope's), the yellow and the all-red."""
    refs = result.monitor.references.get(record.intersection)
    clearance = refs.intergreen_s if refs is not None else 3.0
    # intergreen_s is the program's yellow plus all-red; one step of all-red at least.
    return result.spec.min_green_s + clearance + _STEP_S


def run_drill(
    spec: OversightSpec,
    *,
    attack: str = "world.blackout",
    attack_options: Mapping[str, Any] | None = None,
    attack_start_s: float = 60.0,
    stop_at_s: float | None = None,
) -> DrillOutcome:
    """Run ``spec`` with the incident and the scripted operator; measure the outcome."""
    options = {"intensity": 1.0, "share": 0.5, "start_s": attack_start_s}
    options.update(attack_options or {})
    operator = FallbackOnAlert(stop_at_s=stop_at_s)
    spec = replace(spec, hooks=(*spec.hooks, (f"attack:{attack}", options)))
    result = run_oversight(spec, operator_policy=operator)
    sensor = [a for a in result.alerts if a.kind in SENSOR_ALERTS]
    after = [a for a in sensor if a.time_s >= attack_start_s]
    first = min(after, key=lambda a: a.time_s) if after else None
    fallback: float | None = None
    if first is not None:
        cid = operator.fallbacks.get(first.intersection)
        for record in result.commands:
            if record.id == cid and record.effective_at_s is not None:
                fallback = record.effective_at_s - first.time_s
    stop_to_safe: float | None = None
    within: bool | None = None
    if operator.stop_id is not None:
        stops = [r for r in result.commands if r.id == operator.stop_id]
        done = [r for r in stops if r.effective_at_s is not None and r.accepted_at_s is not None]
        if stops:
            within = len(done) == len(stops) and all(
                r.effective_at_s - r.accepted_at_s <= _stop_bound(result, r)  # type: ignore[operator]
                for r in done
            )
        if done:
            stop_to_safe = max(r.effective_at_s - r.accepted_at_s for r in done)  # type: ignore[operator]
    outcome = DrillOutcome(
        result=result,
        attack=attack,
        attack_start_s=attack_start_s,
        stop_at_s=stop_at_s,
        time_to_alert_s=None if first is None else first.time_s - attack_start_s,
        time_to_fallback_s=fallback,
        stop_to_safe_s=stop_to_safe,
        stop_within_clearance=within,
        alerts_before_attack=len([a for a in sensor if a.time_s < attack_start_s]),
    )
    # Beside oversight.json, so the run folder alone is the drill's evidence (the governance
    # report reads it with --oversight RUN_DIR).
    drill = {k: v for k, v in outcome.to_json().items() if k != "run"}
    (result.out / DRILL_FILE).write_text(json.dumps(drill, indent=1, allow_nan=False))
    return outcome


def drill_summary(outcomes: list[DrillOutcome]) -> dict[str, Any]:
    """Several seeds of one drill: how many passed, and each measure's min/median/max."""

    def spread(values: list[float | None]) -> dict[str, float | int | None]:
        seen = sorted(v for v in values if v is not None)
        if not seen:
            return {"n": 0, "min": None, "median": None, "max": None}
        mid = len(seen) // 2
        median = seen[mid] if len(seen) % 2 else (seen[mid - 1] + seen[mid]) / 2
        return {"n": len(seen), "min": seen[0], "median": median, "max": seen[-1]}

    return {
        "seeds": [o.result.spec.seed for o in outcomes],
        "passed": sum(o.passed for o in outcomes),
        "violations": sum(o.violations for o in outcomes),
        "time_to_alert_s": spread([o.time_to_alert_s for o in outcomes]),
        "time_to_fallback_s": spread([o.time_to_fallback_s for o in outcomes]),
        "stop_to_safe_s": spread([o.stop_to_safe_s for o in outcomes]),
        "alerts_before_attack": sum(o.alerts_before_attack for o in outcomes),
    }


KPI = "mean_time_loss_s"


@dataclass(frozen=True, slots=True)
class HarmOutcome:
    """What the attack cost in mean time loss, with and without the scripted operator.

    Four runs on the same seed: clean and attacked, each without and with
    the operator. *Harm* is attacked minus clean time loss (without the
    operator); *reduction* is the share of the harm the operator removed;
    *cost* is what the operator's reactions cost on the clean run, and
    ``false_alerts`` the sensor alerts raised there.
    """

    attack: str
    seed: int
    time_loss_s: Mapping[str, float | None]  # clean, clean+operator, attacked, attacked+operator
    false_alerts: int
    violations: int

    @property
    def harm_s(self) -> float | None:
        a, c = self.time_loss_s["attacked"], self.time_loss_s["clean"]
        return None if a is None or c is None else a - c

    @property
    def harm_with_operator_s(self) -> float | None:
        a, c = self.time_loss_s["attacked+operator"], self.time_loss_s["clean"]
        return None if a is None or c is None else a - c

    @property
    def reduction(self) -> float | None:
        harm, kept = self.harm_s, self.harm_with_operator_s
        if harm is None or kept is None or harm <= 0:
            return None  # no harm to reduce: undefined, not 100 %
        return 1.0 - kept / harm

    def to_json(self) -> dict[str, Any]:
        clean, cost = self.time_loss_s["clean"], self.time_loss_s["clean+operator"]
        return {
            "attack": self.attack,
            "seed": self.seed,
            "kpi": KPI,
            "time_loss_s": dict(self.time_loss_s),
            "harm_s": self.harm_s,
            "harm_with_operator_s": self.harm_with_operator_s,
            "reduction": self.reduction,
            "operator_cost_on_clean_s": None if clean is None or cost is None else cost - clean,
            "false_alerts": self.false_alerts,
            "violations": self.violations,
        }


def run_harm_drill(
    spec: OversightSpec,
    *,
    attack: str = "world.phantom-queue",
    attack_options: Mapping[str, Any] | None = None,
    attack_start_s: float = 60.0,
) -> HarmOutcome:
    """The attack's time-loss harm with and without the fallback-on-alert operator."""
    options = {"intensity": 1.0, "share": 0.5, "start_s": attack_start_s}
    options.update(attack_options or {})
    base = spec.out or Path(tempfile.mkdtemp(prefix="cityx-harm-drill-"))
    attacked = (*spec.hooks, (f"attack:{attack}", options))
    loss: dict[str, float | None] = {}
    false_alerts = violations = 0
    for name, hooks, operator in (
        ("clean", spec.hooks, False),
        ("clean+operator", spec.hooks, True),
        ("attacked", attacked, False),
        ("attacked+operator", attacked, True),
    ):
        run_spec = replace(spec, hooks=hooks, out=base / name.replace("+", "-"))
        result = run_oversight(run_spec, operator_policy=FallbackOnAlert() if operator else None)
        value = result.kpis.overall.get(KPI)
        loss[name] = None if value is None else float(value)
        violations += result.monitor.total
        if name == "clean+operator":
            false_alerts = len([a for a in result.alerts if a.kind in SENSOR_ALERTS])
    return HarmOutcome(attack, spec.seed, loss, false_alerts, violations)


__all__ = [
    "DRILL_FILE",
    "DRILL_SCHEMA",
    "DrillOutcome",
    "FallbackOnAlert",
    "HarmOutcome",
    "drill_summary",
    "run_drill",
    "run_harm_drill",
]
