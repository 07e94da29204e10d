"""The independent conflict monitor: what SUMO actually showed, checked every step.

A street controller's conflict monitor does not trust the controller: it
watches the lamps. This one reads the signal state SUMO shows at every
step (``trafficlight.getRedYellowGreenState``) and counts three kinds of
*violation*, each against the city's own references:

- ``conflict``: two *conflicting* links both show a priority green ``G``
  at once. Conflicts come from the junction's geometry as SUMO built it:
  two links conflict when their internal lanes are foes
  (``lane.getInternalFoes``) and they come from different approaches
  (incoming edges: parallel lanes of one approach may merge, which is not
  a conflict between signal groups).
  A permissive ``g`` yields, so it conflicts with nothing.
- ``intergreen``: a link leaves green without showing yellow for the
  program's yellow time, or a link turns green sooner after a conflicting
  link's green ended than the program's shortest clearance (its yellow
  plus all-red between two greens).
- ``min_green``: a link's green ends sooner than the *reference minimum
  green* after it began: the smaller of the city's floor
  (``city_min_green_s``, 5 s by default) and the program's shortest green
  (its ``minDur``). The first green of the run is not judged: its start
  was not seen.

The references are read from SUMO itself when the monitor attaches (the
program running then), never from the safety envelope: this module shares
no code or constant with :mod:`cityx.worlds.traffic.safety`, so a bug
there is not repeated here. A run with any violation cannot be reported
complete.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Signal letters, spelt out here on purpose (not imported from the world package),
# as lookup tables indexed by the letter's byte: one fancy-index per state.
_PRIORITY_GREEN = ord("G")
_IS_GREEN = np.zeros(256, dtype=bool)
_IS_GREEN[list(b"Gg")] = True
_IS_AMBER = np.zeros(256, dtype=bool)
_IS_AMBER[list(b"yYu")] = True
_FIRST_VIOLATIONS = 50  # how many violations the report keeps as evidence
_FALLBACK_YELLOW_S = 3.0  # a program with no yellow phase: the city's usual amber


@dataclass(frozen=True, slots=True)
class Violation:
    """One violation seen on the street: when, where, what and which links."""

    time_s: float
    intersection: str
    kind: str  # "conflict", "intergreen" or "min_green"
    links: tuple[int, ...]
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "time_s": self.time_s,
            "intersection": self.intersection,
            "kind": self.kind,
            "links": list(self.links),
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class References:
    """One intersection's references as the monitor derived them from SUMO."""

    min_green_s: float
    yellow_s: float
    intergreen_s: float
    conflicting_pairs: int

    def to_json(self) -> dict[str, Any]:
        return {
            "min_green_s": self.min_green_s,
            "yellow_s": self.yellow_s,
            "intergreen_s": self.intergreen_s,
            "conflicting_pairs": self.conflicting_pairs,
        }


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """Violations counted over a run; ``ok`` only when there are none."""

    steps: int
    min_green: int
    intergreen: int
    conflict: int
    violations: tuple[Violation, ...] = ()  # the first ones, as evidence
    references: Mapping[str, References] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.min_green + self.intergreen + self.conflict

    @property
    def ok(self) -> bool:
        return self.total == 0

    def counts(self) -> dict[str, int]:
        return {
            "min_green": self.min_green,
            "intergreen": self.intergreen,
            "conflict": self.conflict,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            **self.counts(),
            "ok": self.ok,
            "first": [v.to_json() for v in self.violations],
            "references": {k: r.to_json() for k, r in self.references.items()},
        }


class _Junction:
    """What the monitor tracks for one traffic-light system (mutable, private)."""

    def __init__(self, tls: str, foes: NDArray[np.bool_], refs: References) -> None:
        n = foes.shape[0]
        self.tls = tls
        self.foes = foes
        self.refs = refs
        self.green = np.zeros(n, dtype=bool)
        self.amber = np.zeros(n, dtype=bool)
        self.green_since = np.full(n, np.nan)  # NaN: start not seen
        self.amber_since = np.full(n, np.nan)
        self.green_end = np.full(n, -np.inf)
        self.seen = False


def _program_references(logic: Any, city_min_green_s: float) -> tuple[float, float, float]:
    states = [str(p.state) for p in logic.phases]
    durations = [float(p.duration) for p in logic.phases]
    min_durs = [float(getattr(p, "minDur", p.duration)) for p in logic.phases]

    def is_green(s: str) -> bool:
        return any(c in "Gg" for c in s) and not any(c in "yYu" for c in s)

    greens = [k for k, s in enumerate(states) if is_green(s)]
    shortest = min((min_durs[k] for k in greens), default=city_min_green_s)
    min_green = min(city_min_green_s, shortest)
    yellows = [durations[k] for k, s in enumerate(states) if any(c in "yYu" for c in s)]
    yellow = min(yellows) if yellows else _FALLBACK_YELLOW_S
    # Shortest time the program itself leaves between two greens when a link loses green.
    clearances = []
    n = len(states)
    for k in greens:
        total, m = 0.0, (k + 1) % n
        while m != k and not is_green(states[m]):
            total += durations[m]
            m = (m + 1) % n
        if total > 0:
            clearances.append(total)
    intergreen = min(clearances) if clearances else yellow
    return min_green, yellow, intergreen


class ConflictMonitor:
    """Counts violations in the signal states SUMO shows; one per run."""

    def __init__(self, *, city_min_green_s: float = 5.0) -> None:
        if not city_min_green_s > 0:
            raise ValueError(f"city_min_green_s must be positive, got {city_min_green_s}")
        self.city_min_green_s = city_min_green_s
        self._junctions: list[_Junction] = []
        self._counts = {"min_green": 0, "intergreen": 0, "conflict": 0}
        self._first: list[Violation] = []
        self._steps = 0
        self.shown: dict[str, str] = {}  # the states read at the last step

    def attach(self, sumo: Any, intersections: Sequence[str]) -> None:
        """Read each intersection's conflicts and references from the running simulation."""
        self._junctions = []
        for tls in intersections:
            links = sumo.trafficlight.getControlledLinks(tls)
            n = len(links)
            via = [[c[2] for c in link] for link in links]
            # Links from one approach (the same incoming edge) move together: their
            # internal lanes may touch where parallel lanes merge, which is no conflict.
            incoming = [{c[0].rsplit("_", 1)[0] for c in link} for link in links]
            owner: dict[str, list[int]] = {}
            for k, lanes in enumerate(via):
                for lane in lanes:
                    owner.setdefault(lane, []).append(k)
            foes = np.zeros((n, n), dtype=bool)
            for k, lanes in enumerate(via):
                for lane in lanes:
                    if not lane:
                        continue
                    for foe in sumo.lane.getInternalFoes(lane):
                        for j in owner.get(foe, ()):
                            if j != k and not (incoming[k] & incoming[j]):
                                foes[k, j] = foes[j, k] = True
            program = sumo.trafficlight.getProgram(tls)
            logics = sumo.trafficlight.getAllProgramLogics(tls)
            logic = next((lg for lg in logics if lg.programID == program), logics[0])
            min_green, yellow, intergreen = _program_references(logic, self.city_min_green_s)
            refs = References(min_green, yellow, intergreen, int(foes.sum() // 2))
            self._junctions.append(_Junction(tls, foes, refs))

    def observe(self, sumo: Any, time_s: float) -> tuple[Violation, ...]:
        """Check the states shown during the step that ended at ``time_s``."""
        self._steps += 1
        found: list[Violation] = []
        for j in self._junctions:
            text = sumo.trafficlight.getRedYellowGreenState(j.tls)
            self.shown[j.tls] = text
            state = text.encode("ascii")
            letters = np.frombuffer(state, dtype=np.uint8)
            if letters.shape[0] != j.green.shape[0]:
                found.append(
                    Violation(time_s, j.tls, "conflict", (), f"state {state!r}: wrong length")
                )
                continue
            green = _IS_GREEN[letters]
            amber = _IS_AMBER[letters]
            priority = letters == _PRIORITY_GREEN
            first = not j.seen
            if first:
                j.seen = True
            else:
                found.extend(self._check(j, time_s, green, amber, priority))
            started = green & ~j.green
            ended = j.green & ~green
            j.green_since[started] = np.nan if first else time_s
            j.green_end[ended] = time_s
            j.green_since[ended] = np.nan
            amber_started = amber & ~j.amber
            # A yellow already showing when the monitor attached has an unknown start.
            j.amber_since[amber_started] = np.nan if first else time_s
            j.amber_since[~amber] = np.nan
            j.green, j.amber = green, amber
        for v in found:
            self._counts[v.kind] += 1
            if len(self._first) < _FIRST_VIOLATIONS:
                self._first.append(v)
        return tuple(found)

    def _check(
        self,
        j: _Junction,
        now: float,
        green: NDArray[np.bool_],
        amber: NDArray[np.bool_],
        priority: NDArray[np.bool_],
    ) -> list[Violation]:
        out: list[Violation] = []
        refs = j.refs
        both = priority[:, None] & priority[None, :] & j.foes
        if both.any():
            a, b = np.nonzero(np.triu(both))
            pairs = ", ".join(f"{x}/{y}" for x, y in zip(a.tolist(), b.tolist(), strict=True))
            out.append(
                Violation(
                    now,
                    j.tls,
                    "conflict",
                    tuple(sorted({*a.tolist(), *b.tolist()})),
                    f"conflicting links both green: {pairs}",
                )
            )
        ended = j.green & ~green
        cut = ended & (now - j.green_since < refs.min_green_s - 1e-9)
        if cut.any():
            out.append(
                Violation(
                    now,
                    j.tls,
                    "min_green",
                    tuple(np.flatnonzero(cut).tolist()),
                    f"green ended before the minimum of {refs.min_green_s:g} s",
                )
            )
        # Green straight to a non-amber state, or an amber shorter than the program's.
        no_amber = ended & ~amber & ~green
        short_amber = j.amber & ~amber & ~green & (now - j.amber_since < refs.yellow_s - 1e-9)
        bad = no_amber | short_amber
        if bad.any():
            out.append(
                Violation(
                    now,
                    j.tls,
                    "intergreen",
                    tuple(np.flatnonzero(bad).tolist()),
                    f"green ended without {refs.yellow_s:g} s of yellow",
                )
            )
        started = green & ~j.green
        if started.any():
            gap = now - j.green_end  # per link: seconds since its green ended
            early = j.foes[started] & (gap < refs.intergreen_s - 1e-9)[None, :] & ~green[None, :]
            if early.any():
                links = np.flatnonzero(started)[np.nonzero(early)[0]]
                out.append(
                    Violation(
                        now,
                        j.tls,
                        "intergreen",
                        tuple(sorted(set(links.tolist()))),
                        f"green began less than {refs.intergreen_s:g} s after a conflicting green",
                    )
                )
        return out

    def report(self) -> MonitorReport:
        return MonitorReport(
            steps=self._steps,
            min_green=self._counts["min_green"],
            intergreen=self._counts["intergreen"],
            conflict=self._counts["conflict"],
            violations=tuple(self._first),
            references={j.tls: j.refs for j in self._junctions},
        )


__all__ = ["ConflictMonitor", "MonitorReport", "References", "Violation"]
