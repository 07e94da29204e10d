"""Baselines under the same campaign: each runs the plan's attacks, and findings are re-judged.

A *baseline* here is a controller plugin (``fixed``, ``actuated``,
``max-pressure``) that faces the same campaign as the controller under
test, in ``OUT/baselines/NAME``: the same scenarios, attacks (message-path
attacks excepted: only a submission runs behind the bus), intensities and
seeds. The controller's findings are then judged against the best baseline
under the same attack (:func:`.summary.versus`), and ``campaign.json``
carries the comparison (``versus``) and where each baseline's campaign is.
The trial check ``redteam.campaign`` and ``cityx redteam run --baselines``
both use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cityx.attacks import MessageAttack, world_attack
from cityx.core import InputError
from cityx.worlds.engine import write_json
from cityx.worlds.traffic import is_controller_plugin

from .plan import CampaignPlan
from .records import CampaignResult, Versus
from .run import CAMPAIGN_FILE, run_campaign
from .summary import GroupKey, group_findings, versus

BASELINES_DIR = "baselines"


@dataclass(frozen=True, slots=True)
class Compared:
    """The campaign's result judged against its baselines, and each baseline's own result."""

    result: CampaignResult
    baselines: Mapping[str, CampaignResult]
    versus: Mapping[GroupKey, Versus]

    def to_json(self) -> dict[str, Any]:
        """``campaign.json`` as written: the result, the comparison, the baselines' files."""
        return self.result.to_json() | {
            "versus": [v.to_json() for v in self.versus.values()],
            "baselines": {n: str(r.out / CAMPAIGN_FILE) for n, r in self.baselines.items()},
        }


def check_baselines(names: Sequence[str]) -> None:
    """Refuse a baseline that is not a controller plugin (one line naming it)."""
    for name in names:
        if not is_controller_plugin(name):
            raise InputError(
                f"unknown baseline {name!r}",
                where="baselines",
                hint="a controller plugin: fixed, actuated, max-pressure (cityx plugins)",
            )


def run_baselines(
    plan: CampaignPlan,
    result: CampaignResult,
    names: Sequence[str],
    *,
    workers: int = 2,
    engine: str = "local",
    address: str | None = None,
) -> Compared:
    """Run each baseline in ``names`` through ``plan``'s campaign; re-judge ``result``.

    Rewrites ``campaign.json`` in ``result.out`` with the findings as judged
    against the baselines. A name that is not a controller plugin is refused
    before anything runs.
    """
    check_baselines(names)
    out = result.out
    attacks = tuple(a for a in plan.attacks if not isinstance(world_attack(a), MessageAttack))
    baselines: dict[str, CampaignResult] = {}
    if attacks:
        for name in dict.fromkeys(names):
            their = replace(plan, controller=name, attacks=attacks, bus=None)
            baselines[name] = run_campaign(
                their,
                out / BASELINES_DIR / name,
                workers=workers,
                engine=engine,
                address=address,
                record=False,
            )
    against = versus(plan, result.cells, result.groups, {n: r.cells for n, r in baselines.items()})
    judged = replace(
        result, findings=group_findings(plan, result.groups, result.cells, out, against)
    )
    compared = Compared(judged, baselines, against)
    # The campaign file holds the findings as judged here, against the baselines.
    write_json(out / CAMPAIGN_FILE, compared.to_json())
    return compared


__all__ = ["BASELINES_DIR", "Compared", "check_baselines", "run_baselines"]
