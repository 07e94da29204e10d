"""Alerts for the overseer: anomalies, and aids against automation bias.

An *alert* names an intersection, a *kind*, a priority, what was seen (its
*evidence*: numbers and lanes) and a *suggested action*. Kinds:

- ``sensor.dead`` / ``sensor.stale``: the liveness guard
  (:mod:`cityx.defenses.liveness`) flags lanes of the intersection;
- ``sensor.implausible``: the runtime guard (:mod:`cityx.defenses.guards`)
  flags readings that break physics (phantom queues, jumps, capacity);
- ``ai.disagreement``: over the last ``disagreement_window`` decisions the
  controller asked for another phase than a baseline (max-pressure) on the
  same observation in at least ``disagreement_share`` of them: the AI may
  be right, but the overseer should not take it on trust;
- ``ai.low_margin``: the controller switched phase at least
  ``low_margin_count`` times in ``low_margin_window_s`` seconds with a
  margin (chosen score minus runner-up) under ``low_margin``: decisions a
  small input change would flip;
- ``ai.failed``: the controller failed; its intersections fall back to the
  fixed-time plan;
- ``monitor.violation``: the independent conflict monitor saw a violation.

Alarm management (in the spirit of ISA-18.2): an alert of a kind at an
intersection is raised once and stays *active* until its condition
clears; it is raised again only ``rearm_s`` seconds after it cleared, so a
flapping condition or an attacker cannot flood the overseer. An operator
*acknowledges* an alert (it stays active until it clears, but is known),
or *shelves* a kind at an intersection for a while (its conditions raise
nothing meanwhile, and are counted as suppressed); both are recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AlertLimits:
    """When an alert is raised, and how often it may come back."""

    disagreement_window: int = 30
    disagreement_share: float = 0.6
    low_margin: float = 0.5
    low_margin_count: int = 3
    low_margin_window_s: float = 60.0
    rearm_s: float = 60.0

    def __post_init__(self) -> None:
        if self.disagreement_window < 1 or not 0 < self.disagreement_share <= 1:
            raise ValueError("disagreement_window >= 1 and 0 < disagreement_share <= 1, please")
        if self.low_margin_count < 1 or self.rearm_s < 0:
            raise ValueError("low_margin_count >= 1 and rearm_s >= 0, please")


PRIORITY = {
    "monitor.violation": "critical",
    "ai.failed": "high",
    "sensor.dead": "high",
    "sensor.stale": "high",
    "sensor.implausible": "high",
    "ai.disagreement": "medium",
    "ai.low_margin": "low",
}


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as the overseer sees it (times: seconds since the run began)."""

    id: int
    time_s: float
    kind: str
    intersection: str
    message: str
    suggestion: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def priority(self) -> str:
        return PRIORITY.get(self.kind, "medium")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time_s": self.time_s,
            "kind": self.kind,
            "priority": self.priority,
            "intersection": self.intersection,
            "message": self.message,
            "suggestion": self.suggestion,
            "evidence": dict(self.evidence),
        }


class AlertBook:
    """Raises alerts once per condition, clears them, and rate-limits their return."""

    def __init__(self, limits: AlertLimits | None = None) -> None:
        self.limits = limits or AlertLimits()
        self.raised: list[Alert] = []
        self.cleared: list[tuple[int, float]] = []  # (alert id, time it cleared)
        self.suppressed = 0  # conditions seen again within rearm_s: not re-raised
        self._active: dict[tuple[str, str], Alert] = {}
        self._cleared_at: dict[tuple[str, str], float] = {}
        self._disagree: dict[str, deque[bool]] = {}
        self.acknowledged: dict[int, tuple[str, float]] = {}  # alert id -> (operator, time)
        self._shelved: dict[tuple[str, str], float] = {}  # (kind, intersection) -> until
        self._low: dict[str, deque[tuple[float, float]]] = {}

    def active(self) -> tuple[Alert, ...]:
        return tuple(self._active.values())

    def is_active(self, kind: str, intersection: str) -> bool:
        return (kind, intersection) in self._active

    def update(
        self,
        kind: str,
        intersection: str,
        condition: bool,
        now: float,
        *,
        message: str = "",
        suggestion: str = "",
        evidence: Mapping[str, Any] | None = None,
    ) -> tuple[Alert | None, Alert | None]:
        """(newly raised alert, newly cleared alert) for a condition seen at ``now``."""
        key = (kind, intersection)
        if not condition:
            gone = self._active.pop(key, None)
            if gone is not None:
                self._cleared_at[key] = now
                self.cleared.append((gone.id, now))
            return None, gone
        if key in self._active:
            return None, None
        if self._shelved.get(key, -1.0) > now:
            self.suppressed += 1
            return None, None
        last = self._cleared_at.get(key)
        if last is not None and now - last < self.limits.rearm_s:
            self.suppressed += 1
            return None, None
        alert = Alert(
            id=len(self.raised) + 1,
            time_s=now,
            kind=kind,
            intersection=intersection,
            message=message,
            suggestion=suggestion,
            evidence=dict(evidence or {}),
        )
        self._active[key] = alert
        self.raised.append(alert)
        return alert, None

    def acknowledge(self, alert_id: int, operator: str, now: float) -> bool:
        """Mark a raised alert as seen by ``operator``; False for an unknown id."""
        if not 1 <= alert_id <= len(self.raised):
            return False
        self.acknowledged.setdefault(alert_id, (operator, now))
        return True

    def shelve(self, kind: str, intersection: str, until_s: float) -> None:
        """Raise nothing of ``kind`` at ``intersection`` until ``until_s``; an active one clears."""
        self._shelved[(kind, intersection)] = until_s
        gone = self._active.pop((kind, intersection), None)
        if gone is not None:
            self.cleared.append((gone.id, until_s))

    def disagreement(self, intersection: str, differs: bool) -> tuple[bool, float, int]:
        """Record one decision; (over the share, share, decisions in the window)."""
        window = self._disagree.setdefault(
            intersection, deque(maxlen=self.limits.disagreement_window)
        )
        window.append(differs)
        share = sum(window) / len(window)
        full = len(window) == window.maxlen
        return full and share >= self.limits.disagreement_share, share, len(window)

    def low_margin(
        self, intersection: str, now: float, margin: float | None
    ) -> tuple[bool, list[tuple[float, float]]]:
        """Record a switching decision's margin; (too many thin ones lately, the thin ones)."""
        window = self._low.setdefault(intersection, deque())
        if margin is not None and margin < self.limits.low_margin:
            window.append((now, margin))
        while window and now - window[0][0] > self.limits.low_margin_window_s:
            window.popleft()
        return len(window) >= self.limits.low_margin_count, list(window)


__all__ = ["PRIORITY", "Alert", "AlertBook", "AlertLimits"]
