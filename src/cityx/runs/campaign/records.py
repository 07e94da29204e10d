"""A campaign's records: each cell's run, its impact, each group's summary, the result.

Words used here (see :mod:`.plan` for cell, group and clean): a *cell
record* is what one cell's run left (``cells/KEY/cell.json``). An attacked
cell's *delta* is the attacked minus the clean value of each overall KPI,
on the clean cell of the same scenario and seed (its *pair*); its *change*
is the delta of the plan's KPI in percent of the clean value. An attack
*succeeds* on a cell when the change reaches the plan's ``success_pct``.
A group's change is the paired mean delta over the clean runs' mean, in %
(one definition, so it agrees with the means beside it).
*Detection* says whether the runtime guard flagged more steps after the
attack began than on the clean run (its *false alarms*), or the interop
verification rejected more messages. The attacker's *cost* is the sensors
it controlled and the magnitude of what it did, in the attack's unit.

Every record is a frozen value with ``to_json``/``from_json``; the JSON is
exactly what ``cell.json`` and ``campaign.json`` hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cityx.core import Finding, Metric

from .plan import CLEAN, CampaignPlan, Cell

SCHEMA_VERSION = 1
Kpis = Mapping[str, Any]  # overall KPIs as result.json has them: numbers, or None if undefined


@dataclass(frozen=True, slots=True)
class CellRecord:
    """One cell's run, as ``cell.json`` holds it; a failed run is a record too.

    ``hooks`` are the attack's and the guard's reports; ``interop`` the
    secure loop's message counts (None without a bus); ``wall_s`` is None
    when the run's time is unknown (a Ray task that died).
    """

    cell: Cell
    status: str  # "ok" or "failed"
    error: str | None
    kpis: Kpis
    hooks: tuple[Mapping[str, Any], ...]
    complete: bool
    interop: Mapping[str, Any] | None
    out: str
    wall_s: float | None = None
    # {"from": clean cell key, "reason": why} when the clean run's record stands in for a run
    reused: Mapping[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def hook(self, kind: str) -> Mapping[str, Any]:
        """The report of the first hook of ``kind`` (``attack``, ``guard``), or ``{}``."""
        return next((h for h in self.hooks if h.get("kind") == kind), {})

    def rejections(self) -> int:
        """Messages the interop verification rejected, observations and commands."""
        interop = self.interop or {}
        return sum(
            int(n)
            for part in ("observations", "commands")
            for reason, n in (interop.get(part) or {}).items()
            if reason.startswith("rejected:")
        )

    @classmethod
    def failure(cls, cell: Cell, error: str, *, out: Path) -> CellRecord:
        """The record of a cell whose run left nothing to read."""
        return cls(cell, "failed", error, {}, (), complete=False, interop=None, out=str(out))

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            **self.cell.to_json(),
            "key": self.cell.key,
            "status": self.status,
            "error": self.error,
            "kpis": dict(self.kpis),
            "hooks": [dict(h) for h in self.hooks],
            "complete": self.complete,
            "interop": None if self.interop is None else dict(self.interop),
        }
        if self.wall_s is not None:
            obj["wall_s"] = self.wall_s
        if self.reused is not None:
            obj["reused"] = dict(self.reused)
        obj["out"] = self.out
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CellRecord:
        return cls(
            cell=_cell(obj),
            status=str(obj["status"]),
            error=obj.get("error"),
            kpis=dict(obj.get("kpis") or {}),
            hooks=tuple(obj.get("hooks") or ()),
            complete=bool(obj.get("complete", False)),
            interop=obj.get("interop"),
            out=str(obj.get("out", "")),
            wall_s=obj.get("wall_s"),
            reused=obj.get("reused"),
        )


@dataclass(frozen=True, slots=True)
class Detection:
    """Whether the guard or the interop verification noticed, against the clean run."""

    guard: bool
    interop: bool
    guard_flagged_steps: int
    guard_false_alarm_steps: int
    guard_delay_s: float | None  # first flag after the attack began, when the guard noticed
    guard_checks: Mapping[str, Any]  # the guard's flags by check, on the attacked run
    rejected_messages: int

    @property
    def any(self) -> bool:
        return self.guard or self.interop

    def to_json(self) -> dict[str, Any]:
        return {
            "guard": self.guard,
            "interop": self.interop,
            "any": self.any,
            "guard_flagged_steps": self.guard_flagged_steps,
            "guard_false_alarm_steps": self.guard_false_alarm_steps,
            "guard_delay_s": self.guard_delay_s,
            "guard_checks": dict(self.guard_checks),
            "rejected_messages": self.rejected_messages,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Detection:
        return cls(
            guard=bool(obj["guard"]),
            interop=bool(obj["interop"]),
            guard_flagged_steps=int(obj["guard_flagged_steps"]),
            guard_false_alarm_steps=int(obj["guard_false_alarm_steps"]),
            guard_delay_s=obj.get("guard_delay_s"),
            guard_checks=dict(obj.get("guard_checks", {})),
            rejected_messages=int(obj["rejected_messages"]),
        )


@dataclass(frozen=True, slots=True)
class AttackCost:
    """Sensors the attacker controlled, and the magnitude of the attack in ``unit``."""

    sensors: int
    magnitude: float | None
    unit: str | None

    def to_json(self) -> dict[str, Any]:
        return {"sensors": self.sensors, "magnitude": self.magnitude, "unit": self.unit}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> AttackCost | None:
        """The cost an attack reported (None when it reported none)."""
        if not obj:
            return None
        # The magnitude keeps the number type the attack reported (a count, a rate).
        return cls(int(obj["sensors"]), obj.get("magnitude"), obj.get("unit"))


@dataclass(frozen=True, slots=True)
class AttackedCell:
    """An attacked cell paired with its clean run: delta, change, success, detection, cost.

    ``status`` is ``failed`` when the cell or its clean pair failed; the
    delta is then empty and the change, detection and cost unknown.
    ``change_pct`` is rounded to 3 decimals, as written.
    """

    cell: Cell
    status: str
    kpis: Kpis
    delta: Mapping[str, float | None]
    kpi: str
    change_pct: float | None
    success: bool
    detection: Detection | None
    cost: AttackCost | None
    reused: Mapping[str, str] | None = None  # see CellRecord.reused

    @property
    def detected(self) -> bool:
        return self.detection is not None and self.detection.any

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.cell.key,
            **self.cell.to_json(),
            "status": self.status,
            "kpis": dict(self.kpis),
            "delta": dict(self.delta),
            "change_pct": {self.kpi: self.change_pct},
            "success": self.success,
            "detected": self.detected,
            "detection": None if self.detection is None else self.detection.to_json(),
            "cost": None if self.cost is None else self.cost.to_json(),
        } | ({} if self.reused is None else {"reused": dict(self.reused)})

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> AttackedCell:
        ((kpi, change),) = obj["change_pct"].items()
        detection = obj.get("detection")
        return cls(
            cell=_cell(obj),
            status=str(obj["status"]),
            kpis=dict(obj["kpis"]),
            delta=dict(obj["delta"]),
            kpi=str(kpi),
            change_pct=change,
            success=bool(obj["success"]),
            detection=None if detection is None else Detection.from_json(detection),
            cost=AttackCost.from_json(obj.get("cost")),
            reused=obj.get("reused"),
        )


@dataclass(frozen=True, slots=True)
class CleanCell:
    """A clean cell as ``campaign.json`` lists it."""

    scenario: str
    seed: int
    status: str
    kpis: Kpis

    @property
    def key(self) -> str:
        return Cell(self.scenario, CLEAN, 0.0, self.seed).key

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "scenario": self.scenario,
            "seed": self.seed,
            "status": self.status,
            "kpis": dict(self.kpis),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CleanCell:
        return cls(str(obj["scenario"]), int(obj["seed"]), str(obj["status"]), dict(obj["kpis"]))


@dataclass(frozen=True, slots=True)
class FailedCell:
    """A cell whose run failed, and why."""

    cell: Cell
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.cell.key, **self.cell.to_json(), "error": self.error}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FailedCell:
        return cls(_cell(obj), obj.get("error"))


@dataclass(frozen=True, slots=True)
class PairedDelta:
    """The mean paired delta of one KPI with its 95 % t interval, over ``n`` pairs."""

    metric: Metric
    n: int

    def to_json(self) -> dict[str, Any]:
        return self.metric.to_json() | {"n": self.n}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PairedDelta:
        return cls(_metric(obj), int(obj["n"]))


@dataclass(frozen=True, slots=True)
class DetectionRates:
    """Shares of a group's cells the guard, the interop verification, or either noticed."""

    guard: float | None
    interop: float | None
    any: float | None

    def to_json(self) -> dict[str, Any]:
        return {"guard": self.guard, "interop": self.interop, "any": self.any}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> DetectionRates:
        return cls(obj["guard"], obj["interop"], obj["any"])


@dataclass(frozen=True, slots=True)
class Group:
    """One (scenario, attack, intensity) over the seeds whose cells ran.

    ``delta`` holds each summarised KPI's paired delta; ``change_pct`` the
    mean change of ``kpi`` with its interval; ``clean_mean`` the mean of
    ``kpi`` on the clean runs; ``cost`` the most sensors any cell's attack
    controlled and the mean magnitude.
    """

    scenario: str
    attack: str
    intensity: float
    seeds: tuple[int, ...]
    delta: Mapping[str, PairedDelta]
    kpi: str
    change_pct: Metric
    clean_mean: float
    success_rate: float | None
    detection_rate: DetectionRates
    cost: AttackCost

    @property
    def n(self) -> int:
        return len(self.seeds)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "attack": self.attack,
            "intensity": self.intensity,
            "seeds": list(self.seeds),
            "n": self.n,
            "delta": {name: d.to_json() for name, d in self.delta.items()},
            "change_pct": self.change_pct.to_json() | {"kpi": self.kpi},
            "clean_mean": self.clean_mean,
            "success_rate": self.success_rate,
            "detection_rate": self.detection_rate.to_json(),
            "cost": self.cost.to_json(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Group:
        cost = AttackCost.from_json(obj["cost"]) or AttackCost(0, None, None)
        return cls(
            scenario=str(obj["scenario"]),
            attack=str(obj["attack"]),
            intensity=float(obj["intensity"]),
            seeds=tuple(int(s) for s in obj["seeds"]),
            delta={name: PairedDelta.from_json(d) for name, d in obj["delta"].items()},
            kpi=str(obj["change_pct"]["kpi"]),
            change_pct=_metric(obj["change_pct"]),
            clean_mean=float(obj["clean_mean"]),
            success_rate=obj["success_rate"],
            detection_rate=DetectionRates.from_json(obj["detection_rate"]),
            cost=cost,
        )


@dataclass(frozen=True, slots=True)
class Versus:
    """A submission's group against the best baseline under the same attack.

    ``best`` is the baseline whose attacked runs of the same scenario,
    attack, intensity and seeds had the lowest mean ``kpi``
    (``best_attacked_mean``); ``excess_pct`` is the paired mean difference,
    submission attacked minus that baseline attacked, over that mean, in %
    with its 95 % interval over the ``n`` seeds both ran.
    """

    scenario: str
    attack: str
    intensity: float
    best: str
    best_attacked_mean: float
    excess_pct: Metric
    n: int

    @property
    def key(self) -> tuple[str, str, float]:
        return self.scenario, self.attack, self.intensity

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "attack": self.attack,
            "intensity": self.intensity,
            "best": self.best,
            "best_attacked_mean": self.best_attacked_mean,
            "excess_pct": self.excess_pct.to_json(),
            "n": self.n,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Versus:
        return cls(
            str(obj["scenario"]),
            str(obj["attack"]),
            float(obj["intensity"]),
            str(obj["best"]),
            float(obj["best_attacked_mean"]),
            _metric(obj["excess_pct"]),
            int(obj["n"]),
        )


@dataclass(frozen=True, slots=True)
class CampaignResult:
    """Cell records, per-group impact, findings, and where they were written."""

    plan: CampaignPlan
    cells: tuple[AttackedCell, ...]
    clean: tuple[CleanCell, ...]
    groups: tuple[Group, ...]
    findings: tuple[Finding, ...]
    failed: tuple[FailedCell, ...]
    ran: int  # cells run by this call (the others were already done)
    skipped: int
    out: Path
    wall_s: float = 0.0
    reused: int = 0  # cells that took their clean run's record instead of a simulation

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "plan": self.plan.to_json(),
            "cells": [c.to_json() for c in self.cells],
            "clean": [c.to_json() for c in self.clean],
            "groups": [g.to_json() for g in self.groups],
            "findings": [f.to_json() for f in self.findings],
            "failed": [f.to_json() for f in self.failed],
            "ran": self.ran,
            "skipped": self.skipped,
            "reused": self.reused,
            "out": str(self.out),
            "wall_s": round(self.wall_s, 3),
        }


def _cell(obj: Mapping[str, Any]) -> Cell:
    return Cell(str(obj["scenario"]), str(obj["attack"]), float(obj["intensity"]), int(obj["seed"]))


def _metric(obj: Mapping[str, Any]) -> Metric:
    return Metric(obj["value"], obj["ci_low"], obj["ci_high"], str(obj.get("unit", "")))


__all__ = [
    "SCHEMA_VERSION",
    "AttackCost",
    "AttackedCell",
    "CampaignResult",
    "CellRecord",
    "CleanCell",
    "Detection",
    "DetectionRates",
    "FailedCell",
    "Group",
    "PairedDelta",
    "Versus",
]
