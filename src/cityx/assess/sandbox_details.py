"""The sandbox check's details, and its section of the report.

A *baseline comparison* sets the submitted controller against one baseline
over the *pairs* of runs they share (same scenario, seed and demand): per
KPI, both means, the paired difference (submission minus baseline) with
its 95 % interval and, for KPIs compared relatively, the *change in
percent*: that paired mean difference over the baseline's mean. A *cell*
is one world run, recorded with its KPIs and safety counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from cityx.core import Details, Fields, Metric
from cityx.governance import Section, Table, fmt_value

_NAME = "sandbox.nominal details"


@dataclass(frozen=True, slots=True)
class KpiChange:
    """One KPI of the submission against one baseline, over the pairs of runs."""

    submission: float | None
    baseline: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    relative: bool = False  # compared in percent too: then ``change_pct`` is recorded
    change_pct: float | None = None

    def to_json(self, baseline: str) -> dict[str, Any]:
        row: dict[str, Any] = {
            "submission": self.submission,
            baseline: self.baseline,
            "change": self.change,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }
        if self.relative:
            row["change_pct"] = self.change_pct
        return row

    @classmethod
    def from_json(cls, data: Any, baseline: str, where: str) -> KpiChange:
        f = Fields.of(data, where)
        return cls(
            f.number_or_null("submission"),
            f.number_or_null(baseline),
            f.number_or_null("change"),
            f.number_or_null("ci_low"),
            f.number_or_null("ci_high"),
            f.has("change_pct"),
            f.number_or_null("change_pct") if f.has("change_pct") else None,
        )


@dataclass(frozen=True, slots=True)
class BaselineComparison:
    """The submission against one baseline: KPI by KPI, over ``pairs`` pairs of runs."""

    pairs: int
    kpis: Mapping[str, KpiChange]

    def to_json(self, baseline: str) -> dict[str, Any]:
        return {"pairs": self.pairs} | {k: c.to_json(baseline) for k, c in self.kpis.items()}

    @classmethod
    def from_json(cls, data: Any, baseline: str, where: str) -> BaselineComparison:
        f = Fields.of(data, where)
        return cls(
            f.integer("pairs"),
            {
                str(k): KpiChange.from_json(v, baseline, f"{where}.{k}")
                for k, v in f.data.items()
                if k != "pairs"
            },
        )


@dataclass(frozen=True, slots=True)
class SandboxDetails(Details):
    """What the sandbox check ran, and how the submission compares with each baseline.

    ``fairness`` holds the district waiting ratio of each submission run
    and, per baseline, the groups that pay for the city's gain
    (:mod:`cityx.assess.fairness.controllers`); ``cells`` every world run.
    """

    scenario: str
    seeds: tuple[int, ...]
    demands: tuple[float, ...]
    seconds: int
    baselines: tuple[str, ...]
    comparisons: Mapping[str, BaselineComparison]
    fairness: Mapping[str, Any]
    cells: tuple[Mapping[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seeds": list(self.seeds),
            "demands": list(self.demands),
            "seconds": self.seconds,
            "baselines": list(self.baselines),
            "comparisons": {b: c.to_json(b) for b, c in self.comparisons.items()},
            "fairness": dict(self.fairness),
            "cells": [dict(c) for c in self.cells],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        return cls(
            scenario=f.text("scenario"),
            seeds=f.integers("seeds"),
            demands=f.numbers("demands"),
            seconds=f.integer("seconds"),
            baselines=f.texts("baselines"),
            comparisons={
                str(b): BaselineComparison.from_json(c, str(b), f"{_NAME}.comparisons.{b}")
                for b, c in f.obj("comparisons").items()
            },
            fairness=f.obj("fairness"),
            cells=f.objects("cells"),
        )


def sandbox_section(details: SandboxDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """One table per baseline: each KPI's means, paired change and change in percent."""
    tables = []
    for base, comparison in details.comparisons.items():
        rows = []
        for kpi, row in comparison.kpis.items():
            interval = (
                f"[{fmt_value(row.ci_low)}, {fmt_value(row.ci_high)}]"
                if row.ci_low is not None
                else ""
            )
            rows.append(
                (
                    kpi,
                    fmt_value(row.submission),
                    fmt_value(row.baseline),
                    f"{fmt_value(row.change)} {interval}".strip(),
                    "" if row.change_pct is None else f"{fmt_value(row.change_pct)} %",
                )
            )
        tables.append(
            Table(
                f"Submission against {base}: means over {fmt_value(comparison.pairs)} paired "
                "runs; change = submission minus baseline, paired mean [95 % interval]; "
                "change % = that change over the baseline's mean; negative waiting and time "
                "loss are gains",
                ("KPI", "Submission", base, "Change", "Change %"),
                tuple(rows),
                frozenset({1, 2, 3, 4}),
            )
        )
    worst = details.fairness.get("worst")
    if isinstance(worst, Mapping) and any(worst.values()):
        worst_rows = [
            (
                str(base),
                f"{c.get('kind')} {c.get('group')}",
                fmt_value(c.get("delta_mean_waiting_s")),
                fmt_value(c.get("n")),
                fmt_value(c.get("n_baseline")),
                f"seed {c.get('seed')}, demand {fmt_value(c.get('demand'))}",
            )
            for base, cases in worst.items()
            for c in cases
            if isinstance(c, Mapping)
        ]
        tables.append(
            Table(
                "Who pays: in each run, the group that waits longest beyond the baseline "
                f"(groups of at least {fmt_value(details.fairness.get('min_group'))} trips in "
                "both runs), with the trips behind each mean",
                ("Baseline", "Group", "Extra mean waiting s", "n", "n baseline", "Run"),
                tuple(worst_rows),
                frozenset({2, 3, 4}),
            )
        )
    return Section(tables=tuple(tables), shown=frozenset({"comparisons", "cells"}))


__all__ = ["BaselineComparison", "KpiChange", "SandboxDetails", "sandbox_section"]
