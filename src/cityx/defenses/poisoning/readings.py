"""Readings that one detector takes together, read from the feature names, and their rules.

Words used here:

- *reading group*: the features one detector measured at one place and
  time, by *role*: ``count`` (vehicles), ``occupancy``, ``speed``,
  ``queue`` (halting vehicles, jam length), ``speed_ratio`` (speed over
  free flow) and ``free_flow``. In a table of one row per detector window
  (``count_l2_t3``, ``occupancy_l2_t3``, ...) there is one group per lane
  and time step; in a table of one row per approach (``area_occupancy_pct``,
  ``mean_speed_kmh``, ``halting_veh``, ...) there is one. A name's role is
  the role word in it; the group is what is left once role, unit and
  statistic words are taken out (see :func:`reading_groups`); a manifest
  may declare both per feature (``reading`` and ``group``), which wins;
- *rule*: what the readings of one group cannot show together on any road:

  - ``queue-unoccupied``: a queue on an area that reads no occupancy (the
    halting vehicles occupy it);
  - ``slow-empty``: no vehicle seen (no count, no occupancy, no queue) yet
    a speed other than what the sensor reads for an empty road: the free
    flow speed where the table gives it, else the values most empty
    readings share exactly (a speed limit or 0: a sensor's convention);
  - ``occupied-empty``: occupancy without any vehicle counted;

- a rule *holds* in a table when the table shows it: ``queue-unoccupied``
  always (it is physics); the others only where most groups obey it
  (a loop detector counts vehicles as they enter, so a vehicle standing on
  it reads occupancy with no count, and tables differ in conventions).
  With fewer than :data:`MIN_GROUPS` groups to compare, ``slow-empty`` holds
  when most empty readings of the group share a value, and
  ``occupied-empty`` is not judged.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ._data import AuditData, FloatArray, IntArray, Reading
from .scores import DetectorScores, not_applicable

ROLE_WORDS: dict[str, frozenset[str]] = {
    "queue": frozenset({"halting", "queue", "queued", "jam", "stopped"}),
    "occupancy": frozenset({"occupancy", "occ", "occupied"}),
    "speed": frozenset({"speed", "spd", "velocity"}),
    "count": frozenset({"count", "counts", "vehicles", "veh", "volume", "flow", "nveh"}),
}
# Units and statistics say nothing about which detector measured a reading.
NEUTRAL_WORDS = frozenset(
    {"pct", "percent", "h", "kmh", "kph", "mph", "mps", "ms", "m", "s", "km", "mean", "avg"}
    | {"average", "max", "min", "total", "num", "n", "of", "per", "area", "lane", "veh"}
)
MIN_GROUPS = 3
# A rule holds among the groups when the median group breaks it this rarely.
LAW_SHARE = 0.01
# Empty readings of one group share their speed (the convention) at least this often.
CONVENTION_SHARE = 0.5
# An exact speed shared by this share of a group's empty readings is a convention value.
ATOM_SHARE = 0.02
SPEED_TOLERANCE = 0.02  # relative: rounding of a recorded free-flow speed
RULES = ("queue-unoccupied", "slow-empty", "occupied-empty")


@dataclass(frozen=True, slots=True)
class ReadingGroup:
    """The columns (positions among the features) one detector read together."""

    key: str
    count: tuple[int, ...] = ()
    occupancy: tuple[int, ...] = ()
    speed: tuple[int, ...] = ()
    queue: tuple[int, ...] = ()
    speed_ratio: tuple[int, ...] = ()
    free_flow: tuple[int, ...] = ()

    @property
    def roles(self) -> int:
        return sum(bool(c) for c in (self.count, self.occupancy, self.speed, self.queue))


def _words(name: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def _role(words: list[str]) -> str | None:
    found = set(words)
    if "free" in found and ({"flow"} | ROLE_WORDS["speed"]) & found:
        return "free_flow"
    if "ratio" in found and ROLE_WORDS["speed"] & found:
        return "speed_ratio"
    for role in ("queue", "occupancy", "speed", "count"):
        if ROLE_WORDS[role] & found:
            return role
    return None


def reading_groups(
    features: Sequence[str], declared: Mapping[str, Reading] | None = None
) -> tuple[ReadingGroup, ...]:
    """The reading groups the feature names show (groups with two roles or more).

    ``declared`` gives, by feature name, a reading's role and group where the
    submission's manifest declares them; they take precedence over the name.
    """
    declared = declared or {}
    drop = NEUTRAL_WORDS | {"free", "ratio", *(w for ws in ROLE_WORDS.values() for w in ws)}
    members: dict[str, dict[str, list[int]]] = {}
    for j, name in enumerate(features):
        words = _words(name)
        role, key = declared.get(name, (_role(words), ""))
        if role is None:
            continue
        key = key or "_".join(w for w in words if w not in drop)
        members.setdefault(key, {}).setdefault(role, []).append(j)
    groups = (
        ReadingGroup(key=key, **{role: tuple(cols) for role, cols in roles.items()})
        for key, roles in sorted(members.items())
    )
    return tuple(g for g in groups if g.roles >= 2)


_STEP = re.compile(r"^(t|step|lag|k)(\d+)$")


def step_neighbours(features: Sequence[str]) -> tuple[IntArray, IntArray]:
    """Per feature, the same reading one time step before and after (-1 where none).

    A wide-window table names its steps (``count_l2_t3``: lane 2, step 3); the
    reading is the name with the step word left out.
    """
    steps: dict[str, list[tuple[int, int]]] = {}
    for j, name in enumerate(features):
        words = _words(name)
        found = [(i, m) for i, w in enumerate(words) if (m := _STEP.match(w))]
        if len(found) != 1:
            continue
        i, m = found[0]
        key = "_".join([*words[:i], m.group(1), *words[i + 1 :]])
        steps.setdefault(key, []).append((int(m.group(2)), j))
    before = np.full(len(features), -1, dtype=np.int64)
    after = np.full(len(features), -1, dtype=np.int64)
    for members in steps.values():
        members.sort()
        for (s0, j0), (s1, j1) in itertools.pairwise(members):
            if s1 == s0 + 1:
                after[j0], before[j1] = j1, j0
    return before, after


@dataclass(frozen=True, slots=True)
class Breaks:
    """Per rule: the rows that break it in each group, and the rows its premise covers."""

    rows: dict[str, list[NDArray[np.bool_]]] = field(default_factory=dict)
    premise: dict[str, list[int]] = field(default_factory=dict)

    def add(self, rule: str, broken: NDArray[np.bool_], premise: int) -> None:
        self.rows.setdefault(rule, []).append(broken)
        self.premise.setdefault(rule, []).append(premise)


def _empty(x: FloatArray, g: ReadingGroup) -> NDArray[np.bool_]:
    """Rows in which the group saw no vehicle at all."""
    cols = [*g.count, *g.occupancy, *g.queue]
    return np.asarray((x[:, cols] <= 0).all(axis=1))


def _slow(x: FloatArray, g: ReadingGroup, empty: NDArray[np.bool_]) -> NDArray[np.bool_] | None:
    """Empty rows whose speed is not the empty-road speed; None when no convention shows."""
    if g.speed_ratio:
        return np.asarray(empty & (x[:, g.speed_ratio] < 1.0 - SPEED_TOLERANCE).any(axis=1))
    if g.free_flow and g.speed:
        free = x[:, g.free_flow[:1]]
        return np.asarray(empty & (x[:, g.speed] < free * (1.0 - SPEED_TOLERANCE)).any(axis=1))
    if not g.speed or empty.sum() < 10:
        return None
    speed = x[empty][:, g.speed[0]]
    values, counts = np.unique(speed, return_counts=True)
    atoms = values[counts >= max(2, ATOM_SHARE * speed.size)]
    if atoms.size == 0:
        return None
    near = np.abs(x[:, g.speed[0]][:, None] - atoms[None, :]) <= SPEED_TOLERANCE * np.maximum(
        np.abs(atoms[None, :]), 1e-9
    )
    # Too few empty readings share a value: the table has no empty-road convention to break.
    if near[empty].any(axis=1).mean() < CONVENTION_SHARE:
        return None
    return np.asarray(empty & ~near.any(axis=1))


def rule_breaks(data: AuditData, groups: Sequence[ReadingGroup]) -> Breaks:
    """Every group's rows that break each rule it can express."""
    x = data.x
    out = Breaks()
    for g in groups:
        empty = _empty(x, g)
        if g.queue and g.occupancy:
            unoccupied = (x[:, g.occupancy] <= 0).all(axis=1)
            out.add(
                "queue-unoccupied",
                np.asarray(unoccupied & (x[:, g.queue] > 0).any(axis=1)),
                int(unoccupied.sum()),
            )
        slow = _slow(x, g, empty)
        if slow is not None:
            out.add("slow-empty", slow, int(empty.sum()))
        if g.count and g.occupancy:
            uncounted = (x[:, g.count] <= 0).all(axis=1)
            out.add(
                "occupied-empty",
                np.asarray(uncounted & (x[:, g.occupancy] > 0).any(axis=1)),
                int(uncounted.sum()),
            )
    return out


def holding(breaks: Breaks, n_groups: int) -> dict[str, NDArray[np.bool_]]:
    """Per rule that holds in this table (see the module docstring), the rows that break it."""
    out: dict[str, NDArray[np.bool_]] = {}
    for rule, rows in breaks.rows.items():
        if rule != "queue-unoccupied":
            if n_groups < MIN_GROUPS and rule == "occupied-empty":
                continue
            if n_groups >= MIN_GROUPS:
                shares = [
                    r.sum() / max(p, 1) for r, p in zip(rows, breaks.premise[rule], strict=True)
                ]
                if float(np.median(shares)) > LAW_SHARE:
                    continue
        out[rule] = np.logical_or.reduce(rows)
    return out


def reading_consistency(data: AuditData) -> DetectorScores:
    """Rows whose readings of one detector break a rule that holds in the table."""
    name = "reading_consistency"
    groups = reading_groups(data.features, data.readings)
    if not groups:
        return not_applicable(name, data.n, "no feature names with reading roles")
    broken = holding(rule_breaks(data, groups), len(groups))
    if not broken:
        return not_applicable(name, data.n, f"{len(groups)} reading group(s), no rule holds")
    hit = np.logical_or.reduce(list(broken.values()))
    counts = ", ".join(f"{rule} {int(rows.sum())}" for rule, rows in broken.items())
    return DetectorScores(
        name,
        np.where(hit, 2.0, 0.0),
        note=f"{len(groups)} reading group(s); rows breaking: {counts}",
    )


__all__ = [
    "RULES",
    "ReadingGroup",
    "holding",
    "reading_consistency",
    "reading_groups",
    "rule_breaks",
    "step_neighbours",
]
