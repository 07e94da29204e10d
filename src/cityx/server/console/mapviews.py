"""What one moment of a run shows on the overseer's map: a *view*.

Words as in :mod:`cityx.server.console.netmap`: a view (:class:`StateView`) is, per
intersection, its mode, the green phase shown, its queue (halting vehicles) overall
and per approach, the AI's choice (:class:`ChoiceView`); and the active alerts.
Live views come from the run's state feed (:func:`view_from_snapshot`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ChoiceView:
    """The AI's current decision at one intersection.

    ``calibrated`` is the calibrated probability that the choice was right (the
    runner-up would not have done better; :mod:`cityx.oversight.confidence`), None
    when no calibration covers the controller; ``ood`` whether the choice was made
    out of distribution (None: not checked).
    """

    chosen: int
    runner_up: int | None
    margin: float | None
    reasons: tuple[str, ...] = ()
    calibrated: float | None = None
    ood: bool | None = None

    @property
    def confidence(self) -> str:
        """The confidence in words: calibrated where a calibration covers it, else the margin
        (how far the choice was from flipping), said to be no probability."""
        if self.margin is None:
            said = "only one green phase: no alternative"
        elif self.calibrated is not None:
            said = f"{self.calibrated:.0%} (calibrated) that phase {self.runner_up} would not"
            said += f" have done better; margin {self.margin:.3g}"
        else:
            word = "thin" if abs(self.margin) < 0.5 else "clear" if abs(self.margin) < 5 else "wide"
            said = f"{word} (margin {self.margin:.3g} over phase {self.runner_up}; not calibrated)"
        if self.ood:
            said = "⚠ out of distribution: " + said
        return said


@dataclass(frozen=True, slots=True)
class IntersectionView:
    id: str
    mode: str
    green: int | None
    signals: str
    queue: float | None
    approaches: Mapping[str, float] | None
    choice: ChoiceView | None


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    kind: str
    intersection: str
    priority: str
    message: str = ""
    suggestion: str = ""
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StateView:
    time_s: float
    intersections: Mapping[str, IntersectionView]
    alerts: tuple[AlertView, ...] = ()


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def choice_view(raw: Mapping[str, Any] | None) -> ChoiceView | None:
    if not raw or raw.get("chosen") is None:
        return None
    runner = raw.get("runner_up")
    return ChoiceView(
        chosen=int(raw["chosen"]),
        runner_up=None if runner is None else int(runner),
        margin=_num(raw.get("margin")),
        reasons=tuple(str(r) for r in raw.get("reasons") or ())[:3],
        calibrated=_num(raw.get("confidence")),
        ood=None if raw.get("ood") is None else bool(raw.get("ood")),
    )


def view_from_snapshot(snapshot: Mapping[str, Any]) -> StateView:
    """A view of one state message's ``state`` (:meth:`cityx.oversight.steps.RunState.snapshot`)."""
    out = {}
    for tls, raw in dict(snapshot.get("intersections") or {}).items():
        approaches = raw.get("approaches")
        green = raw.get("green")
        out[str(tls)] = IntersectionView(
            id=str(tls),
            mode=str(raw.get("mode", "unknown")),
            green=None if green is None else int(green),
            signals=str(raw.get("signals") or ""),
            queue=_num(raw.get("queue")),
            approaches=(
                {str(k): float(v) for k, v in approaches.items()}
                if isinstance(approaches, Mapping)
                else None
            ),
            choice=choice_view(raw.get("choice")),
        )
    alerts = tuple(
        AlertView(
            id=int(a.get("id", 0)),
            kind=str(a.get("kind", "")),
            intersection=str(a.get("intersection", "")),
            priority=str(a.get("priority", "")),
            message=str(a.get("message", "")),
            suggestion=str(a.get("suggestion", "")),
            evidence=a.get("evidence") if isinstance(a.get("evidence"), Mapping) else None,
        )
        for a in snapshot.get("alerts") or ()
    )
    return StateView(time_s=float(snapshot.get("time_s", 0.0)), intersections=out, alerts=alerts)


__all__ = [
    "AlertView",
    "ChoiceView",
    "IntersectionView",
    "StateView",
    "choice_view",
    "view_from_snapshot",
]
