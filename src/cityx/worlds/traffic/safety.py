"""The safety envelope between a controller and the signals.

A controller asks for a *green phase* (by its index in the network's own
program, see :mod:`.network`) at each intersection; the envelope decides
what the signals really show, whatever was asked:

- only phases that exist and are green phases may be asked for;
- a green is held for at least the *minimum green* before it may end and
  is ended after the *maximum green* (the next green of the program follows);
- between two greens every movement that loses its green shows yellow, and
  then all-red when the program has an all-red phase. When the program
  itself goes from the one green to the other, its own yellow/all-red
  phases are used unchanged; otherwise the clearance is built link by link
  with the program's own yellow and all-red durations.

A request it cannot honour is *refused* (the signals keep what they show)
and counted by kind in the :class:`SafetyReport`; ends forced by the
maximum green are counted as ``forced_max_green``.

A *stop* (:meth:`SafetyEnvelope.stop`, used by human oversight) takes an
intersection out of phase control: once the green shown has had its
minimum green (at once during a clearance), every link showing green or
yellow shows the program's yellow, then all links show red for the
program's all-red time (at least one step), and then the *halt state*:
all-red, or *flashing* (``o`` on every link: drivers yield as at an
unsignalised junction). While stopped, requests and the maximum green are
ignored. :meth:`SafetyEnvelope.release` hands the intersection back to a
green phase: from all-red at once, from flashing through an all-red of
the yellow plus all-red time.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .network import GREEN, Intersection, Phase

DEFAULT_YELLOW_S = 3.0


class Refusal(StrEnum):
    UNKNOWN_INTERSECTION = "unknown_intersection"
    UNKNOWN_PHASE = "unknown_phase"
    NOT_GREEN = "not_green"  # a yellow or all-red phase: skipping the clearance
    MIN_GREEN = "min_green"
    IN_TRANSITION = "in_transition"


@dataclass(frozen=True, slots=True)
class SafetyReport:
    """What the envelope refused and forced over a run."""

    requests: int  # asks for a phase other than the one shown or coming
    switches: int  # greens changed at a controller's request
    forced_max_green: int
    refused: Mapping[str, int] = field(default_factory=dict)
    min_green_s: float = 0.0
    max_green_s: float = 0.0

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "switches": self.switches,
            "forced_max_green": self.forced_max_green,
            "refused": {k.value: int(self.refused.get(k.value, 0)) for k in Refusal},
            "refused_total": self.refused_total,
            "min_green_s": self.min_green_s,
            "max_green_s": self.max_green_s,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SafetyReport:
        return cls(
            requests=int(obj["requests"]),
            switches=int(obj["switches"]),
            forced_max_green=int(obj["forced_max_green"]),
            refused={k: int(v) for k, v in obj["refused"].items()},
            min_green_s=float(obj["min_green_s"]),
            max_green_s=float(obj["max_green_s"]),
        )


def clearance(program: Sequence[Phase], current: int, target: int) -> list[tuple[str, float]]:
    """The yellow/all-red states (with durations) to show from green ``current`` to ``target``."""
    n = len(program)
    between = []
    k = (current + 1) % n
    while k != current and not program[k].is_green:
        between.append(program[k])
        k = (k + 1) % n
    if k == target:
        own = [(p.state, p.duration) for p in between]
        if _safe([program[current].state, *(state for state, _ in own), program[target].state]):
            return own
    old, new = program[current].state, program[target].state
    yellow_s = next((p.duration for p in between if p.is_yellow), None)
    if yellow_s is None:
        yellow_s = max((p.duration for p in program if p.is_yellow), default=DEFAULT_YELLOW_S)
    red_s = max((p.duration for p in program if p.is_all_red), default=0.0)
    kept = [a in GREEN and b in GREEN for a, b in zip(old, new, strict=True)]
    losing = [a in GREEN and b not in GREEN for a, b in zip(old, new, strict=True)]
    if not any(losing):
        return []
    yellow = "".join(
        "y" if lose else ("g" if keep else ("r" if a in GREEN or a in "rsyYu" else a))
        for a, keep, lose in zip(old, kept, losing, strict=True)
    )
    steps = [(yellow, yellow_s)]
    if red_s > 0:
        steps.append(("".join("g" if keep else "r" for keep in kept), red_s))
    return steps


def _safe(states: Sequence[str]) -> bool:
    """No link goes from green straight to red (it must show yellow in between)."""
    for before, after in itertools.pairwise(states):
        for a, b in zip(before, after, strict=True):
            if a in GREEN and b in "rs":
                return False
    return True


class StopStatus(StrEnum):
    """Where an intersection is on its way to (or in) a stop."""

    NONE = "none"  # under phase control
    PENDING = "pending"  # asked to stop; the green shown has not had its minimum yet
    CLEARING = "clearing"  # showing the stop's yellow / all-red
    STOPPED = "stopped"  # showing the halt state (all-red or flashing)


class _Signal:
    """The envelope's state for one intersection (mutable, private)."""

    __slots__ = ("age", "green", "greens", "halt", "program", "queue", "shown", "stop_pending")

    def __init__(self, intersection: Intersection) -> None:
        self.program = intersection.phases
        self.greens = intersection.green_phases
        self.green = self.greens[0] if self.greens else 0
        self.age = 0.0
        self.queue: list[list[Any]] = []  # [state, seconds left]
        self.shown = ""
        self.halt: str | None = None  # the halt state once a stop has begun
        self.stop_pending: str | None = None  # the halt state of a stop not yet begun

    def next_green(self, after: int) -> int:
        n = len(self.program)
        for step in range(1, n + 1):
            k = (after + step) % n
            if self.program[k].is_green:
                return k
        return after


class SafetyEnvelope:
    """Turns requested green phases into safe signal states, one step at a time."""

    def __init__(
        self,
        intersections: Sequence[Intersection],
        *,
        min_green_s: float = 5.0,
        max_green_s: float = 90.0,
        step_s: float = 1.0,
    ) -> None:
        if not 0 < min_green_s <= max_green_s:
            raise ValueError(
                f"need 0 < min_green_s <= max_green_s, got {min_green_s}, {max_green_s}"
            )
        self._intersections = tuple(intersections)
        self.min_green_s = min_green_s
        self.max_green_s = max_green_s
        self.step_s = step_s
        self._signals: dict[str, _Signal] = {}
        self._refused: Counter[str] = Counter()
        self._requests = 0
        self._switches = 0
        self._forced = 0
        # What the last step did per intersection (controller-choice/v1 envelope outcomes).
        self._outcomes: dict[str, str] = {}

    def reset(self, current: Mapping[str, int]) -> None:
        """Start from the program phase each intersection shows now."""
        self._signals = {}
        for intersection in self._intersections:
            signal = _Signal(intersection)
            if not signal.greens:
                raise ValueError(f"intersection {intersection.id!r} has no green phase")
            phase = current.get(intersection.id, signal.greens[0]) % len(signal.program)
            if signal.program[phase].is_green:
                signal.green = phase
            else:
                # Mid-clearance: finish the program's own clearance first.
                signal.green = signal.next_green(phase)
                k = phase
                while k != signal.green:
                    signal.queue.append([signal.program[k].state, signal.program[k].duration])
                    k = (k + 1) % len(signal.program)
            self._signals[intersection.id] = signal
        self._refused.clear()
        self._requests = self._switches = self._forced = 0

    def phase(self, intersection: str) -> tuple[int, float, bool]:
        """(green phase shown or coming, seconds it has shown, in a clearance)."""
        s = self._signals[intersection]
        return s.green, s.age, bool(s.queue)

    def step(self, requests: Mapping[str, int]) -> dict[str, str]:
        """Apply the requests for the next step; the states that change, by intersection."""
        for tls in requests:
            if tls not in self._signals:
                self._refuse(Refusal.UNKNOWN_INTERSECTION)
        changes: dict[str, str] = {}
        outcomes = self._outcomes
        outcomes.clear()
        for tls, signal in self._signals.items():
            if signal.stop_pending is not None and (signal.queue or signal.age >= self.min_green_s):
                self._begin_stop(signal)
            if signal.halt is not None or signal.stop_pending is not None:
                # Out of phase control: the stop's clearance, then the halt state.
                if signal.queue:
                    state = signal.queue[0][0]
                    signal.queue[0][1] -= self.step_s
                    if signal.queue[0][1] <= 1e-9:
                        signal.queue.pop(0)
                elif signal.halt is not None:
                    state = signal.halt
                else:  # pending: keep the green until its minimum is over
                    state = signal.program[signal.green].state
                    signal.age += self.step_s
                if state != signal.shown:
                    changes[tls] = signal.shown = state
                continue
            wanted = requests.get(tls)
            if wanted is not None and wanted != signal.green:
                outcomes[tls] = self._request(signal, int(wanted))
            elif not signal.queue and signal.age >= self.max_green_s and len(signal.greens) > 1:
                self._forced += 1
                self._switch(signal, signal.next_green(signal.green))
                outcomes[tls] = "forced_max_green"
            else:
                outcomes[tls] = "kept"
            if signal.queue:
                state = signal.queue[0][0]
                signal.queue[0][1] -= self.step_s
                if signal.queue[0][1] <= 1e-9:
                    signal.queue.pop(0)
            else:
                state = signal.program[signal.green].state
                signal.age += self.step_s
            if state != signal.shown:
                changes[tls] = signal.shown = state
        return changes

    def _request(self, signal: _Signal, wanted: int) -> str:
        self._requests += 1
        if not 0 <= wanted < len(signal.program):
            self._refuse(Refusal.UNKNOWN_PHASE)
            return Refusal.UNKNOWN_PHASE.value
        if not signal.program[wanted].is_green:
            self._refuse(Refusal.NOT_GREEN)
            return Refusal.NOT_GREEN.value
        if signal.queue:
            self._refuse(Refusal.IN_TRANSITION)
            return "in_transition"
        if signal.age < self.min_green_s:
            self._refuse(Refusal.MIN_GREEN)
            return "min_green_held"
        self._switches += 1
        self._switch(signal, wanted)
        return "switched"

    def outcomes(self) -> dict[str, str]:
        """What the last step did per intersection: kept, switched, min_green_held,
        in_transition, forced_max_green (or a refusal kind for an invalid request)."""
        return dict(self._outcomes)

    def _switch(self, signal: _Signal, target: int) -> None:
        signal.queue = [
            [state, d] for state, d in clearance(signal.program, signal.green, target) if d > 0
        ]
        signal.green = target
        signal.age = 0.0

    def _refuse(self, kind: Refusal) -> None:
        self._refused[kind.value] += 1

    # -- stops (human oversight) ---------------------------------------------------

    def stop(self, intersection: str, *, flashing: bool = False) -> None:
        """Clear ``intersection`` to all-red, then hold all-red (or flash); never cuts a green.

        The clearance begins at the next :meth:`step` once the green shown
        has had its minimum green (at once during a clearance). Stopping a
        stopped intersection changes only its halt state (through all-red).
        """
        signal = self._signals[intersection]
        links = len(signal.program[0].state)
        halt = "o" * links if flashing else "r" * links
        if signal.halt is not None:
            if signal.halt != halt:
                signal.queue.append(["r" * links, max(self._red_s(signal), self.step_s)])
                signal.halt = halt
            return
        signal.stop_pending = halt

    def release(self, intersection: str, green: int) -> None:
        """Hand a stopped (or stopping) intersection back to green phase ``green``.

        From flashing the signals first show all-red for the program's
        yellow plus all-red time; a stop not yet begun is simply cancelled.
        """
        signal = self._signals[intersection]
        if not (0 <= green < len(signal.program) and signal.program[green].is_green):
            raise ValueError(f"phase {green} of {intersection!r} is not a green phase")
        if signal.halt is None:
            signal.stop_pending = None
            return
        links = len(signal.program[0].state)
        if signal.halt != "r" * links and not signal.queue:
            signal.queue.append(
                ["r" * links, max(self._yellow_s(signal) + self._red_s(signal), self.step_s)]
            )
        signal.halt = None
        signal.green = green
        signal.age = 0.0

    def stop_status(self, intersection: str) -> StopStatus:
        signal = self._signals[intersection]
        if signal.stop_pending is not None:
            return StopStatus.PENDING
        if signal.halt is None:
            return StopStatus.NONE
        return StopStatus.CLEARING if signal.queue else StopStatus.STOPPED

    def _begin_stop(self, signal: _Signal) -> None:
        halt, signal.stop_pending = signal.stop_pending, None
        assert halt is not None
        # From what is shown now (a clearance's kept greens included), not the program.
        shown = signal.shown or signal.program[signal.green].state
        links = len(shown)
        moving = [c in GREEN or c in "yYu" for c in shown]
        steps: list[list[Any]] = []
        if any(moving):
            yellow = "".join("y" if m else "r" for m in moving)
            steps.append([yellow, self._yellow_s(signal)])
        steps.append(["r" * links, max(self._red_s(signal), self.step_s)])
        signal.queue = [s for s in steps if s[1] > 0]
        signal.halt = halt

    @staticmethod
    def _yellow_s(signal: _Signal) -> float:
        return max((p.duration for p in signal.program if p.is_yellow), default=DEFAULT_YELLOW_S)

    @staticmethod
    def _red_s(signal: _Signal) -> float:
        return max((p.duration for p in signal.program if p.is_all_red), default=0.0)

    def report(self) -> SafetyReport:
        return SafetyReport(
            requests=self._requests,
            switches=self._switches,
            forced_max_green=self._forced,
            refused=dict(self._refused),
            min_green_s=self.min_green_s,
            max_green_s=self.max_green_s,
        )


__all__ = ["Refusal", "SafetyEnvelope", "SafetyReport", "StopStatus", "clearance"]
