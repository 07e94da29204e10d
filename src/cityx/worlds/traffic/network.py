"""What a prepared run knows about its road network, as plain values.

An *intersection* is one SUMO traffic-light system (``tlLogic``): it may
span several junctions. Its *links* are the movements it controls, each
from an *incoming lane* to an *outgoing lane*, indexed like the letters of
a *signal state* (``"GGrryy"``: ``G``/``g`` green with/without priority,
``y`` yellow, ``r``/``s`` red, ``o``/``O`` off). A *phase* is one state
shown for a duration; a *green phase* shows at least one green and no
yellow. The *program* is the network's own static cycle of phases.

*Groups* split vehicles for fairness: ``vclass`` (SUMO's vehicle class of
the vehicle's type), ``approach`` (the incoming edge by which the vehicle
reached the first signalised intersection on its route, ``none`` if it
met no signal) and ``district`` (the quadrant ``NE``/``NW``/``SE``/``SW`` of
the network's bounding box holding the midpoint of its departure edge).

*Detector geometry*: each detected lane's lane-area detector (e2) length,
so that attacks and guards know how many vehicles a detector can hold
without reading the run's files.

Everything here is JSON-serialisable and free of SUMO imports, so the
parent process can read a run's ``network.json`` without loading SUMO.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

GREEN = frozenset("Gg")
# The sandbox's lane-area detector covers at most this much of a lane's end.
DEFAULT_DETECTOR_M = 100.0
YELLOW = frozenset("yYu")


@dataclass(frozen=True, slots=True)
class Phase:
    """One signal state and how long the network's own program shows it."""

    state: str
    duration: float
    min_dur: float | None = None
    max_dur: float | None = None

    @property
    def is_green(self) -> bool:
        """At least one green and no yellow: a phase a controller may ask for."""
        return any(c in GREEN for c in self.state) and not any(c in YELLOW for c in self.state)

    @property
    def is_yellow(self) -> bool:
        return any(c in YELLOW for c in self.state)

    @property
    def is_all_red(self) -> bool:
        return all(c in "rs" for c in self.state)


@dataclass(frozen=True, slots=True)
class Intersection:
    """One signalised intersection: its program, links and detected lanes."""

    id: str
    program_id: str
    phases: tuple[Phase, ...]
    links: tuple[tuple[str, str], ...]  # link index -> (incoming lane, outgoing lane)
    lanes: tuple[str, ...]  # incoming lanes with detectors, in a fixed order
    # Each lane's lane-area detector (e2) length in metres, in the order of ``lanes``.
    detector_m: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.detector_m and len(self.detector_m) != len(self.lanes):
            raise ValueError(f"intersection {self.id}: a detector length per lane, please")

    @property
    def green_phases(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.phases) if p.is_green)

    @property
    def incoming_edges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lane_edge(lane) for lane in self.lanes))


def lane_edge(lane: str) -> str:
    """The edge a lane belongs to: SUMO lane ids are ``EDGE_INDEX``."""
    return lane.rsplit("_", 1)[0]


def e1_id(lane: str) -> str:
    return f"e1_{lane}"


def e2_id(lane: str) -> str:
    return f"e2_{lane}"


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """The run's intersections and the tables that map vehicles to groups."""

    intersections: tuple[Intersection, ...]
    vclass_of_vtype: Mapping[str, str] = field(default_factory=dict)
    district_of_edge: Mapping[str, str] = field(default_factory=dict)
    approach_edges: frozenset[str] = frozenset()

    @property
    def lanes(self) -> tuple[str, ...]:
        """Every detected incoming lane, intersection by intersection (the observation's order)."""
        return tuple(lane for i in self.intersections for lane in i.lanes)

    def detector_lengths(self, lanes: Sequence[str] | None = None) -> NDArray[np.float64]:
        """The lane-area detector length of each lane (all observed lanes by default), metres.

        A lane the network records no length for gets :data:`DEFAULT_DETECTOR_M`.
        """
        known = {
            lane: m
            for i in self.intersections
            for lane, m in zip(i.lanes, i.detector_m, strict=False)
        }
        chosen = self.lanes if lanes is None else lanes
        return np.fromiter(
            (known.get(lane, DEFAULT_DETECTOR_M) for lane in chosen), np.float64, len(chosen)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "intersections": [
                {
                    "id": i.id,
                    "program_id": i.program_id,
                    "phases": [
                        {
                            "state": p.state,
                            "duration": p.duration,
                            "min_dur": p.min_dur,
                            "max_dur": p.max_dur,
                        }
                        for p in i.phases
                    ],
                    "links": [list(link) for link in i.links],
                    "lanes": list(i.lanes),
                    "detector_m": list(i.detector_m),
                }
                for i in self.intersections
            ],
            "vclass_of_vtype": dict(self.vclass_of_vtype),
            "district_of_edge": dict(self.district_of_edge),
            "approach_edges": sorted(self.approach_edges),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> NetworkInfo:
        return cls(
            intersections=tuple(
                Intersection(
                    id=i["id"],
                    program_id=i["program_id"],
                    phases=tuple(Phase(**p) for p in i["phases"]),
                    links=tuple((a, b) for a, b in i["links"]),
                    lanes=tuple(i["lanes"]),
                    detector_m=tuple(float(m) for m in i.get("detector_m", ())),
                )
                for i in obj["intersections"]
            ),
            vclass_of_vtype=dict(obj["vclass_of_vtype"]),
            district_of_edge=dict(obj["district_of_edge"]),
            approach_edges=frozenset(obj["approach_edges"]),
        )


__all__ = [
    "DEFAULT_DETECTOR_M",
    "GREEN",
    "YELLOW",
    "Intersection",
    "NetworkInfo",
    "Phase",
    "e1_id",
    "e2_id",
    "lane_edge",
]
