"""The ``redteam.campaign`` check's details, and its section of the report.

The details point to the campaign's ``campaign.json`` and carry its attack
*groups* (one per scenario, attack and intensity: the paired change of the
KPI in percent with its 95 % interval over seeds, the success rate, the
share of cells the guard or the interop verification noticed, and the
attacker's cost) and its *failed* cells, as :mod:`.records` types them;
the *baselines*' groups under the same campaign, and each submission
group's comparison with the best baseline under the same attack
(*versus*). The report shows them side by side: a plot of impact against
intensity only when some attack ran at more than one intensity (one point
says nothing about a sweep), and a table always.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from markupsafe import Markup

from cityx.core import DataError, Details, Fields, Metric
from cityx.governance import Plot, Section, Table, fmt_value, impact_chart

from .records import FailedCell, Group, Versus

_NAME = "redteam.campaign details"
Point = tuple[float, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class CampaignDetails(Details):
    """The campaign file, its attack groups and its failed cells (as the campaign records)."""

    campaign: str
    groups: tuple[Group, ...]
    failed: tuple[FailedCell, ...]
    baselines: Mapping[str, tuple[Group, ...]] = field(default_factory=dict)
    versus: tuple[Versus, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "groups": [g.to_json() for g in self.groups],
            "failed": [f.to_json() for f in self.failed],
            "baselines": {n: [g.to_json() for g in gs] for n, gs in self.baselines.items()},
            "versus": [v.to_json() for v in self.versus],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        try:
            groups = tuple(Group.from_json(g) for g in f.objects("groups"))
            failed = tuple(FailedCell.from_json(c) for c in f.objects("failed"))
            # Results written before baselines faced the campaign have neither key.
            baselines = {
                str(n): tuple(Group.from_json(g) for g in gs)
                for n, gs in (f.obj("baselines") if f.has("baselines") else {}).items()
            }
            vs = tuple(Versus.from_json(v) for v in f.objects("versus")) if f.has("versus") else ()
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"a campaign record does not fit: {exc!r}", where=_NAME) from exc
        return cls(f.text("campaign"), groups, failed, baselines, vs)


def _span(m: Metric) -> str:
    if m.ci_low is None:
        return fmt_value(m.value)
    return f"{fmt_value(m.value)} [{fmt_value(m.ci_low)}, {fmt_value(m.ci_high)}]"


def campaign_section(details: CampaignDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """The submission and each baseline under the same attacks, side by side; a plot of
    impact against intensity when some attack ran at several intensities."""
    groups = details.groups
    if not groups:
        return Section()
    names = tuple(details.baselines)
    theirs = {
        (n, g.scenario, g.attack, g.intensity): g for n, gs in details.baselines.items() for g in gs
    }
    vs = {v.key: v for v in details.versus}
    series: dict[str, list[Point]] = {}
    rows = []
    for g in groups:
        change, detected, cost = g.change_pct, g.detection_rate, g.cost
        series.setdefault(g.attack, []).append(
            (g.intensity, change.value, change.ci_low, change.ci_high)
        )
        other = [theirs.get((n, g.scenario, g.attack, g.intensity)) for n in names]
        best = vs.get((g.scenario, g.attack, g.intensity))
        rows.append(
            (
                f"{g.attack} on {g.scenario}",
                fmt_value(g.intensity),
                fmt_value(g.n),
                _span(change),
                *(_span(o.change_pct) if o is not None else "not run" for o in other),
                f"{_span(best.excess_pct)} vs {best.best}" if best is not None else "",
                fmt_value(g.success_rate),
                fmt_value(detected.guard),
                fmt_value(detected.interop),
                f"{fmt_value(cost.sensors)} sensors, {fmt_value(cost.magnitude)} {cost.unit or ''}",
            )
        )
    sweep = any(len(points) > 1 for points in series.values())
    plots = (
        (Plot("Impact against intensity", Markup(impact_chart(f"{key}-impact", series))),)
        if sweep
        else ()
    )
    kpi = groups[0].kpi
    numeric = frozenset(range(1, 4 + len(names) + 4))
    return Section(
        plots=plots,
        tables=(
            Table(
                f"Red-team campaign: each attack against the same seeds unattacked, for the "
                f"submission and each baseline under the same campaign. Change % = paired mean "
                f"difference of {kpi} (attacked minus unattacked) over the unattacked mean "
                "[95 % interval over seeds]. Vs best baseline = the submission attacked minus "
                "the best baseline under the same attack, over that baseline's attacked mean",
                (
                    "Attack",
                    "Intensity",
                    "Seeds",
                    "Submission change %",
                    *(f"{n} change %" for n in names),
                    "Vs best baseline %",
                    "Success",
                    "Guard",
                    "Interop",
                    "Cost",
                ),
                tuple(rows),
                numeric,
            ),
        ),
        shown=frozenset({"groups", "baselines", "versus"}),
    )


__all__ = ["CampaignDetails", "campaign_section"]
