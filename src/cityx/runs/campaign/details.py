"""The ``redteam.campaign`` check's details, and its section of the report.

The details point to the campaign's ``campaign.json`` and carry its attack
*groups* (one per scenario, attack and intensity: the paired change of the
KPI in percent with its 95 % interval over seeds, the success rate, the
share of cells the guard or the interop verification noticed, and the
attacker's cost) and its *failed* cells, as :mod:`.records` types them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from markupsafe import Markup

from cityx.core import DataError, Details, Fields, Metric
from cityx.governance import Plot, Section, Table, fmt_value, impact_chart

from .records import FailedCell, Group

_NAME = "redteam.campaign details"
Point = tuple[float, float | None, float | None, float | None]


@dataclass(frozen=True, slots=True)
class CampaignDetails(Details):
    """The campaign file, its attack groups and its failed cells (as the campaign records)."""

    campaign: str
    groups: tuple[Group, ...]
    failed: tuple[FailedCell, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "groups": [g.to_json() for g in self.groups],
            "failed": [f.to_json() for f in self.failed],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        f = Fields.of(data, _NAME)
        try:
            groups = tuple(Group.from_json(g) for g in f.objects("groups"))
            failed = tuple(FailedCell.from_json(c) for c in f.objects("failed"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"a campaign record does not fit: {exc!r}", where=_NAME) from exc
        return cls(f.text("campaign"), groups, failed)


def campaign_section(details: CampaignDetails, metrics: Mapping[str, Metric], key: str) -> Section:
    """Impact against intensity per attack, and a row per attack group."""
    groups = details.groups
    if not groups:
        return Section()
    series: dict[str, list[Point]] = {}
    rows = []
    for g in groups:
        change, detected, cost = g.change_pct, g.detection_rate, g.cost
        series.setdefault(g.attack, []).append(
            (g.intensity, change.value, change.ci_low, change.ci_high)
        )
        rows.append(
            (
                f"{g.attack} on {g.scenario}",
                fmt_value(g.intensity),
                f"{fmt_value(change.value)} [{fmt_value(change.ci_low)}, "
                f"{fmt_value(change.ci_high)}]",
                fmt_value(g.success_rate),
                fmt_value(detected.guard),
                fmt_value(detected.interop),
                f"{fmt_value(cost.sensors)} sensors, {fmt_value(cost.magnitude)} {cost.unit or ''}",
            )
        )
    return Section(
        plots=(Plot("Impact against intensity", Markup(impact_chart(f"{key}-impact", series))),),
        tables=(
            Table(
                "Red-team campaign: each attack against the same seeds unattacked; change of "
                "mean time loss in % [95 % interval over seeds]",
                ("Attack", "Intensity", "Change %", "Success", "Guard", "Interop", "Cost"),
                tuple(rows),
                frozenset({1, 2, 3, 4, 5}),
            ),
        ),
        shown=frozenset({"groups"}),
    )


__all__ = ["CampaignDetails", "campaign_section"]
