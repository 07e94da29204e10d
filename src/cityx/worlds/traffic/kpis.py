"""Key performance indicators (KPIs), computed from SUMO's own outputs.

A *trip* is one vehicle's record in SUMO's tripinfo output: finished (it
arrived) or unfinished (still driving at the end; written because of
``--tripinfo-output.write-unfinished``). Per trip:

- *waiting* (``waitingTime``): seconds spent slower than 0.1 m/s;
- *time loss* (``timeLoss``): seconds lost against driving at the vehicle's
  desired speed; the *delay* of buses and emergency vehicles is their time loss;
- *travel time* (``duration``): seconds from departure to arrival, finished trips only.

Waiting and time loss count finished and unfinished trips. Vehicles that
never entered the network (the *backlog*: due to depart but still waiting
for space at the end) have no trip at all, and *teleports* (vehicles SUMO
removed from a jam and put further on) hide waiting, so a controller can
look better by keeping vehicles out: read ``backlog`` and ``teleports``
beside every mean. Overall KPIs are ``mean_``/``p50_``/``p95_``/``max_``
of ``waiting_s``, ``time_loss_s`` and ``travel_time_s``, plus ``vehicles``
(trips), ``arrived``, ``backlog``, ``teleports``, ``collisions``,
``bus_mean_delay_s``, ``emergency_mean_delay_s`` and ``co2_kg`` (``None``
when not measured). The same trip KPIs are given per group (see
:mod:`.network`), with the backlog split by group too.

The run's *trip table* (:class:`cityx.core.TripTable`: each trip with its
groups) is built once from tripinfo and vehroutes, in the world's own
process; the KPIs are computed from it, and it is kept beside the result
(:mod:`.trips`) for the fairness measures.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import TripTable

from .network import NetworkInfo
from .world import OUTPUTS

Value = float | int | None
GROUP_KINDS = ("vclass", "approach", "district")


@dataclass(frozen=True, slots=True)
class Trips:
    """SUMO's tripinfo records as columns."""

    id: NDArray[np.str_]
    vtype: NDArray[np.str_]
    depart_edge: NDArray[np.str_]
    depart: NDArray[np.float64]
    arrival: NDArray[np.float64]  # -1 when unfinished, as SUMO writes it
    finished: NDArray[np.bool_]
    waiting: NDArray[np.float64]
    time_loss: NDArray[np.float64]
    duration: NDArray[np.float64]
    co2_mg: NDArray[np.float64]  # NaN without the emissions device
    truncated: bool = False  # the file ended early (the simulation crashed)

    def __len__(self) -> int:
        return int(self.id.shape[0])


def read_tripinfo(path: Path) -> Trips:
    """Read a tripinfo file; a truncated one (from a crash) gives what it holds."""
    ids: list[str] = []
    vtypes: list[str] = []
    edges: list[str] = []
    numbers: list[tuple[float, float, float, float, float, float]] = []
    truncated = False
    co2 = float("nan")
    try:
        for _, element in ET.iterparse(path):
            tag = element.tag
            if tag == "emissions":
                co2 = float(element.attrib.get("CO2_abs", "nan"))
            elif tag == "tripinfo":
                a = element.attrib
                ids.append(a["id"])
                vtypes.append(a.get("vType", "DEFAULT_VEHTYPE"))
                edges.append(a.get("departLane", "").rsplit("_", 1)[0])
                numbers.append(
                    (
                        float(a.get("depart", "nan")),
                        float(a.get("arrival", "-1")),
                        float(a.get("waitingTime", "0")),
                        float(a.get("timeLoss", "0")),
                        float(a.get("duration", "0")),
                        co2,
                    )
                )
                co2 = float("nan")
                element.clear()
    except ET.ParseError:
        truncated = True
    except FileNotFoundError:
        truncated = True
    table = np.asarray(numbers, dtype=np.float64).reshape(-1, 6)
    return Trips(
        id=np.asarray(ids, dtype=np.str_),
        vtype=np.asarray(vtypes, dtype=np.str_),
        depart_edge=np.asarray(edges, dtype=np.str_),
        depart=table[:, 0],
        arrival=table[:, 1],
        finished=table[:, 1] >= 0,
        waiting=table[:, 2],
        time_loss=table[:, 3],
        duration=table[:, 4],
        co2_mg=table[:, 5],
        truncated=truncated,
    )


def read_approaches(path: Path, approach_edges: frozenset[str]) -> dict[str, str]:
    """Vehicle id -> the incoming edge of the first signal on its (last) route."""
    found: dict[str, str] = {}
    edges = ""
    try:
        for _, element in ET.iterparse(path):
            if element.tag == "route":
                edges = element.attrib.get("edges", edges)
            elif element.tag == "vehicle":
                found[element.attrib["id"]] = next(
                    (e for e in edges.split() if e in approach_edges), "none"
                )
                edges = ""
                element.clear()
    except (ET.ParseError, FileNotFoundError):
        pass
    return found


def read_statistics(path: Path) -> dict[str, int] | None:
    """Loaded/inserted/backlog/teleports/collisions from the statistic output, if written."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, FileNotFoundError):
        return None

    def number(tag: str, attr: str) -> int:
        element = root.find(tag)
        return int(float(element.attrib.get(attr, "0"))) if element is not None else 0

    return {
        "loaded": number("vehicles", "loaded"),
        "inserted": number("vehicles", "inserted"),
        "backlog": number("vehicles", "waiting"),
        "teleports": number("teleports", "total"),
        "collisions": number("safety", "collisions"),
        "emergency_stops": number("safety", "emergencyStops"),
    }


def _count_collisions(path: Path) -> int | None:
    try:
        return sum(1 for _, e in ET.iterparse(path) if e.tag == "collision")
    except (ET.ParseError, FileNotFoundError):
        return None


def _stats(values: NDArray[np.float64], name: str) -> dict[str, Value]:
    if values.size == 0:
        return {f"{k}_{name}": None for k in ("mean", "p50", "p95", "max")}
    p50, p95 = np.percentile(values, [50, 95])
    return {
        f"mean_{name}": round(float(values.mean()), 3),
        f"p50_{name}": round(float(p50), 3),
        f"p95_{name}": round(float(p95), 3),
        f"max_{name}": round(float(values.max()), 3),
    }


def _trip_kpis(trips: TripTable, mask: NDArray[np.bool_]) -> dict[str, Value]:
    out: dict[str, Value] = {
        "vehicles": int(mask.sum()),
        "arrived": int((mask & trips.finished).sum()),
    }
    out |= _stats(trips.waiting_s[mask], "waiting_s")
    out |= _stats(trips.time_loss_s[mask], "time_loss_s")
    out |= _stats(trips.duration_s[mask & trips.finished], "travel_time_s")
    return out


@dataclass(frozen=True, slots=True)
class Kpis:
    """Overall KPIs and the same per group kind and group."""

    overall: Mapping[str, Value]
    by_group: Mapping[str, Mapping[str, Mapping[str, Value]]] = field(default_factory=dict)
    complete: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": dict(self.overall),
            "by_group": {
                k: {g: dict(v) for g, v in groups.items()} for k, groups in self.by_group.items()
            },
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, complete: bool = True) -> Kpis:
        return cls(overall=dict(obj["overall"]), by_group=dict(obj["by_group"]), complete=complete)


def trip_table(folder: Path, network: NetworkInfo) -> TripTable:
    """The trip table of the run whose outputs are in ``folder`` (tripinfo and vehroutes)."""
    trips = read_tripinfo(folder / OUTPUTS["tripinfo"])
    vclass_of, districts = network.vclass_of_vtype, network.district_of_edge
    approaches = read_approaches(folder / OUTPUTS["vehroute"], network.approach_edges)
    return TripTable(
        vehicle=trips.id,
        vtype=trips.vtype,
        vclass=np.asarray(
            [vclass_of.get(t, "passenger") for t in trips.vtype.tolist()], dtype=np.str_
        ),
        district=np.asarray(
            [districts.get(e, "none") for e in trips.depart_edge.tolist()], dtype=np.str_
        ),
        approach=np.asarray([approaches.get(v, "none") for v in trips.id.tolist()], dtype=np.str_),
        depart_s=trips.depart,
        arrival_s=np.where(trips.finished, trips.arrival, np.nan),
        duration_s=trips.duration,
        waiting_s=trips.waiting,
        time_loss_s=trips.time_loss,
        co2_mg=trips.co2_mg,
        finished=trips.finished,
        partial=trips.truncated,
    )


def compute_kpis(folder: Path, network: NetworkInfo, trips: TripTable | None = None) -> Kpis:
    """The KPIs of the run whose outputs are in ``folder``.

    ``trips`` is the run's trip table when the caller has it already
    (otherwise it is read from ``folder``).
    """
    if trips is None:
        trips = trip_table(folder, network)
    stats = read_statistics(folder / OUTPUTS["statistics"])
    pending = _read_pending(folder / OUTPUTS["pending"])
    vclass_of, districts = network.vclass_of_vtype, network.district_of_edge
    vclass, district, approach = trips.vclass, trips.district, trips.approach

    everyone = np.ones(len(trips), dtype=np.bool_)
    overall = _trip_kpis(trips, everyone)
    if stats is not None:
        overall |= {
            k: stats[k] for k in ("backlog", "teleports", "collisions", "loaded", "inserted")
        }
    else:
        overall |= {
            "backlog": len(pending) if pending is not None else None,
            "teleports": None,
            "collisions": _count_collisions(folder / OUTPUTS["collisions"]),
            "loaded": None,
            "inserted": None,
        }
    for cls_name, key in (("bus", "bus_mean_delay_s"), ("emergency", "emergency_mean_delay_s")):
        chosen = vclass == cls_name
        overall[key] = round(float(trips.time_loss_s[chosen].mean()), 3) if chosen.any() else None
    measured = ~np.isnan(trips.co2_mg)
    overall["co2_kg"] = (
        round(float(trips.co2_mg[measured].sum()) / 1e6, 3) if measured.any() else None
    )

    pending_groups: dict[str, list[str]] = {k: [] for k in GROUP_KINDS}
    for _vid, vtype, edge, first_signal in pending or []:
        pending_groups["vclass"].append(vclass_of.get(vtype, "passenger"))
        pending_groups["district"].append(districts.get(edge, "none"))
        pending_groups["approach"].append(first_signal)
    by_group: dict[str, dict[str, dict[str, Value]]] = {}
    for kind, labels in (("vclass", vclass), ("approach", approach), ("district", district)):
        names = sorted(set(labels.tolist()) | set(pending_groups[kind]))
        groups = {}
        for name in names:
            kpis = _trip_kpis(trips, labels == name)
            kpis["backlog"] = pending_groups[kind].count(name) if pending is not None else None
            groups[name] = kpis
        by_group[kind] = groups
    complete = stats is not None and not trips.partial
    return Kpis(overall=overall, by_group=by_group, complete=complete)


def _read_pending(path: Path) -> list[list[str]] | None:
    try:
        rows: list[list[str]] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rows


__all__ = [
    "GROUP_KINDS",
    "Kpis",
    "Trips",
    "compute_kpis",
    "read_approaches",
    "read_statistics",
    "read_tripinfo",
    "trip_table",
]
