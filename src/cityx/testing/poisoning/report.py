"""The protocol's report: figures per cell, family and attack, and each goal met or missed.

Words used here (the figures of ``bench/poisoning.py``):

- *F1*: of the flagged rows against the poisoned rows of one table; a
  cell's *median* and *p10* (10th percentile) are over its tables;
- *ours* is the audit given the table alone, *ours+trusted* the audit also
  given the family's trusted set;
- *verdict counts*: how many tables got each verdict;
- *attribution*: on tables whose poisoning is 1-5 compromised sources,
  *recall* is the share of compromised sources the audit flagged and
  *precision* the share of flagged sources that were compromised (pooled
  over the tables: sums of hits, misses and false alarms);
- *clean tables*: the unpoisoned table of each family and seed; the
  *false-flag rate* is the share of its rows flagged;
- a goal is *met*, *missed*, or *not run* (no table of its scope ran).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .attacks import ATTACKS, SOURCE_ATTACKS
from .cells import CELLS, FAMILIES, FAMILY_BY_NAME, Cell
from .runner import CaseResult, Outcome

MODES = ("ours", "ours_trusted")
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class Goals:
    f1_median: float = 0.9
    f1_p10: float = 0.75
    clean_max_flagged_share: float = 0.01
    clean_verdict_share: float = 0.8
    attribution_recall: float = 0.9
    attribution_precision: float = 0.8
    max_attributed_sources: int = 5
    wall_s: float = 5.0
    wall_rows: int = 10_000
    wall_features: int = 100


GOALS = Goals()


@dataclass(frozen=True, slots=True)
class GoalResult:
    goal: str
    scope: str
    status: str  # met, missed, not run
    value: Any
    target: str

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "scope": self.scope,
            "status": self.status,
            "value": self.value,
            "target": self.target,
        }


def _status(ok: bool | None) -> str:
    return "not run" if ok is None else ("met" if ok else "missed")


def _outcome(result: CaseResult, mode: str) -> Outcome | None:
    return result.ours if mode == "ours" else result.ours_trusted


def f1_figures(f1s: Sequence[float]) -> dict[str, Any]:
    if not f1s:
        return {"n": 0, "median": None, "p10": None}
    values = np.asarray(f1s, dtype=np.float64)
    return {
        "n": int(values.size),
        "median": round(float(np.median(values)), 3),
        "p10": round(float(np.percentile(values, 10)), 3),
    }


def _figures(results: Sequence[CaseResult]) -> dict[str, Any]:
    """F1 and verdicts per mode over poisoned tables, plus peers' F1."""
    out: dict[str, Any] = {"tables": len(results)}
    for mode in MODES:
        outcomes = [o for r in results if (o := _outcome(r, mode)) is not None]
        out[mode] = {
            "f1": f1_figures([o.f1 for o in outcomes if o.f1 is not None]),
            "verdicts": dict(Counter(o.verdict or "none" for o in outcomes)),
        }
    peers: dict[str, list[float]] = {}
    for r in results:
        for name, got in r.peers.items():
            if isinstance(got, Outcome) and got.f1 is not None:
                peers.setdefault(name, []).append(got.f1)
    if peers:
        out["peers"] = {name: f1_figures(v) for name, v in sorted(peers.items())}
    return out


def attribution(results: Iterable[CaseResult], mode: str = "ours") -> dict[str, Any]:
    """Pooled source recall and precision over tables with 1-5 compromised sources."""
    hits = misses = false = tables = 0
    for r in results:
        outcome = _outcome(r, mode)
        if (
            r.case.attack not in SOURCE_ATTACKS
            or outcome is None
            or not 0 < len(r.truth_sources) <= GOALS.max_attributed_sources
        ):
            continue
        truth, flagged = set(r.truth_sources), set(outcome.flagged_sources)
        tables += 1
        hits += len(truth & flagged)
        misses += len(truth - flagged)
        false += len(flagged - truth)
    return {
        "tables": tables,
        "recall": round(hits / (hits + misses), 3) if hits + misses else None,
        "precision": round(hits / (hits + false), 3) if hits + false else None,
        "compromised": hits + misses,
        "flagged": hits + false,
    }


def _clean(results: Sequence[CaseResult]) -> dict[str, Any]:
    out: dict[str, Any] = {"tables": len(results)}
    for mode in MODES:
        outcomes = [o for r in results if (o := _outcome(r, mode)) is not None]
        shares = [o.flagged_share for o in outcomes]
        out[mode] = {
            "verdicts": dict(Counter(o.verdict or "none" for o in outcomes)),
            "flagged_share_mean": round(float(np.mean(shares)), 4) if shares else None,
            "flagged_share_max": round(float(np.max(shares)), 4) if shares else None,
            "flagged_sources": sum(len(o.flagged_sources) for o in outcomes),
        }
    return out


def summarise(
    results: Sequence[CaseResult], *, wall_s: dict[str, float] | None = None
) -> dict[str, Any]:
    """The report: figures per cell, family and attack, clean tables, and the goals."""
    ok = [r for r in results if r.error is None]
    poisoned = [r for r in ok if r.case.attack is not None]
    clean = [r for r in ok if r.case.attack is None]
    cells: list[dict[str, Any]] = []
    for c in CELLS:
        mine = [
            r
            for r in poisoned
            if (r.case.family, r.case.attack, r.case.band) == (c.family, c.attack, c.band)
        ]
        if not mine:
            continue
        cells.append(
            {
                "family": c.family,
                "attack": c.attack,
                "band": c.band,
                "detectable": c.detectable,
                "with_trusted": c.with_trusted,
                "reason": c.reason,
                **_figures(mine),
            }
        )
    by_family_attack = {
        f: {
            a: _figures([r for r in poisoned if r.case.family == f and r.case.attack == a])
            for a in ATTACKS
            if any(r.case.family == f and r.case.attack == a for r in poisoned)
        }
        for f in FAMILIES
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "cases": len(results),
        "errors": [{"case": r.case.key, "error": r.error} for r in results if r.error],
        "cells": cells,
        "by_family_attack": by_family_attack,
        # Leave-one-family-out and leave-one-attack-out are reporting splits: each
        # family's (attack's) figures on their own; see protocol.py.
        "by_family": {
            f: _figures([r for r in poisoned if r.case.family == f])
            for f in FAMILIES
            if any(r.case.family == f for r in poisoned)
        },
        "by_attack": {
            a: _figures([r for r in poisoned if r.case.attack == a])
            for a in ATTACKS
            if any(r.case.attack == a for r in poisoned)
        },
        "clean": {
            f: _clean([r for r in clean if r.case.family == f])
            for f in FAMILIES
            if any(r.case.family == f for r in clean)
        },
        "attribution": {
            f: {m: attribution([r for r in ok if r.case.family == f], m) for m in MODES}
            for f in FAMILIES
            if any(r.case.family == f and r.case.attack in SOURCE_ATTACKS for r in ok)
        },
        "wall_s": wall_s or {},
        "goals": [g.to_json() for g in judge(results, wall_s=wall_s)],
    }


def _cell_goals(c: Cell, mine: Sequence[CaseResult]) -> list[GoalResult]:
    scope = f"{c.family}/{c.attack}@{c.band}"
    out: list[GoalResult] = []
    for mode, applies in (("ours", c.detectable), ("ours_trusted", c.with_trusted)):
        outcomes = [o for r in mine if (o := _outcome(r, mode)) is not None]
        if applies:
            f1 = f1_figures([o.f1 for o in outcomes if o.f1 is not None])
            ran = f1["n"] > 0
            out.append(
                GoalResult(
                    f"detectable cell: F1 median and p10 ({mode})",
                    scope,
                    _status(
                        ran and f1["median"] >= GOALS.f1_median and f1["p10"] >= GOALS.f1_p10
                        if ran
                        else None
                    ),
                    {"median": f1["median"], "p10": f1["p10"], "n": f1["n"]},
                    f"median >= {GOALS.f1_median}, p10 >= {GOALS.f1_p10}",
                )
            )
        else:
            verdicts = Counter(o.verdict for o in outcomes)
            out.append(
                GoalResult(
                    f"undetectable cell: never clean ({mode})",
                    scope,
                    _status(verdicts["clean"] == 0 if outcomes else None),
                    dict(verdicts),
                    "no clean verdict (undetermined is the goal; poisoned is no error)",
                )
            )
    return out


def judge(
    results: Sequence[CaseResult], *, wall_s: dict[str, float] | None = None
) -> list[GoalResult]:
    """Every goal of :data:`GOALS`, met, missed or not run, on ``results``."""
    ok = [r for r in results if r.error is None]
    poisoned = [r for r in ok if r.case.attack is not None]
    out: list[GoalResult] = []
    for c in CELLS:
        if not c.applicable:
            continue
        mine = [
            r
            for r in poisoned
            if (r.case.family, r.case.attack, r.case.band) == (c.family, c.attack, c.band)
        ]
        if mine:
            out.extend(_cell_goals(c, mine))
    for mode in MODES:
        outcomes = [o for r in poisoned if (o := _outcome(r, mode)) is not None]
        wrong = sum(o.verdict == "clean" for o in outcomes)
        out.append(
            GoalResult(
                f"no clean verdict on a poisoned table ({mode})",
                "all poisoned tables (3-15 %)",
                _status(wrong == 0 if outcomes else None),
                {"clean_verdicts": wrong, "tables": len(outcomes)},
                "0 clean verdicts",
            )
        )
    for family in FAMILIES:
        tables = [r for r in ok if r.case.attack is None and r.case.family == family]
        declared = FAMILY_BY_NAME[family]
        for mode in MODES:
            outcomes = [o for r in tables if (o := _outcome(r, mode)) is not None]
            ran = bool(outcomes)
            poisoned_verdicts = sum(o.verdict == "poisoned" for o in outcomes)
            out.append(
                GoalResult(
                    f"clean table never poisoned ({mode})",
                    family,
                    _status(poisoned_verdicts == 0 if ran else None),
                    {"poisoned_verdicts": poisoned_verdicts, "tables": len(outcomes)},
                    "0 poisoned verdicts",
                )
            )
            share = float(np.mean([o.flagged_share for o in outcomes])) if ran else None
            out.append(
                GoalResult(
                    f"clean table: rows flagged ({mode})",
                    family,
                    _status(share <= GOALS.clean_max_flagged_share if share is not None else None),
                    None if share is None else round(share, 4),
                    f"mean share <= {GOALS.clean_max_flagged_share}",
                )
            )
            if declared.clean_provable:
                clean_share = (
                    sum(o.verdict == "clean" for o in outcomes) / len(outcomes) if ran else None
                )
                out.append(
                    GoalResult(
                        f"clean table: clean verdicts ({mode})",
                        family,
                        _status(
                            clean_share >= GOALS.clean_verdict_share
                            if clean_share is not None
                            else None
                        ),
                        None if clean_share is None else round(clean_share, 3),
                        f">= {GOALS.clean_verdict_share} (family declared clean-provable)",
                    )
                )
    pooled = attribution(ok, "ours")
    out.append(
        GoalResult(
            "source attribution recall and precision (ours)",
            "tables with a source column and 1-5 compromised sources",
            _status(
                None
                if pooled["tables"] == 0
                else (pooled["recall"] or 0.0) >= GOALS.attribution_recall
                and (pooled["precision"] or 0.0) >= GOALS.attribution_precision
            ),
            pooled,
            f"recall >= {GOALS.attribution_recall}, precision >= {GOALS.attribution_precision}",
        )
    )
    walls = wall_s or {}
    out.append(
        GoalResult(
            "audit wall time",
            f"{GOALS.wall_rows} rows x ~{GOALS.wall_features} features",
            _status(max(walls.values()) <= GOALS.wall_s if walls else None),
            walls,
            f"<= {GOALS.wall_s} s",
        )
    )
    return out


def goal_counts(goals: Iterable[GoalResult | dict[str, Any]]) -> dict[str, int]:
    statuses = [g.status if isinstance(g, GoalResult) else g["status"] for g in goals]
    return dict(Counter(statuses))


__all__ = [
    "GOALS",
    "MODES",
    "GoalResult",
    "Goals",
    "attribution",
    "goal_counts",
    "judge",
    "summarise",
]
