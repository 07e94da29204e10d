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

Everything here is JSON-serialisable and free of SUMO imports, so the
parent process can read a run's ``network.json`` without loading SUMO.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GREEN = frozenset("Gg")
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
                )
                for i in obj["intersections"]
            ),
            vclass_of_vtype=dict(obj["vclass_of_vtype"]),
            district_of_edge=dict(obj["district_of_edge"]),
            approach_edges=frozenset(obj["approach_edges"]),
        )


__all__ = ["GREEN", "YELLOW", "Intersection", "NetworkInfo", "Phase", "e1_id", "e2_id", "lane_edge"]
