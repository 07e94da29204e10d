"""Scenarios, the scenario plugin contract, and the per-run copy of a scenario.

A *scenario* is a SUMO road network with its demand (the vehicles that
want to travel). Named scenarios are plugins of kind ``scenario`` (the
ones cityx ships are in :mod:`.catalogue`); their *source* says where the
files come from: ``resco`` (the RESCO networks of the ``sumo-rl``
package), ``builtin`` (generated at run time) or ``user`` (any
``.sumocfg`` file, given by its path, which needs no plugin).

A *run folder* holds the per-run copy: the network, demand and additional
files copied under ``scenario/``, a rewritten ``scenario.sumocfg``, the
generated ``detectors.add.xml`` (an induction loop, e1, near the stop line
and a lane-area detector, e2, over the last 100 m of every incoming lane of
every signalised intersection), ``actuated.add.xml`` (the network's own
programs turned into SUMO actuated programs) and ``network.json`` (see
:mod:`.network`). The originals are only ever read.
"""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, final
from xml.sax.saxutils import quoteattr

from cityx.core import PluginKind, PluginMeta, Registry, check_seed

from ..errors import ScenarioError
from .network import DEFAULT_DETECTOR_M, Intersection, NetworkInfo, Phase, e1_id, e2_id
from .sumo_env import load_sumolib, sumo_tools

E1_SETBACK_M = 5.0  # induction loop this far before the stop line
E2_LENGTH_M = DEFAULT_DETECTOR_M  # lane-area detector over at most this much of the lane's end
DETECTORS_FILE = "detectors.add.xml"  # in each run folder
DETECTOR_PERIOD_S = 300  # default aggregation period of the detectors' own output files
DEFAULT_MIN_GREEN_S = 5.0
DEFAULT_MAX_GREEN_S = 90.0


class ScenarioSource(StrEnum):
    RESCO = "resco"
    BUILTIN = "builtin"
    USER = "user"


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named network and demand; ``files`` are the originals (empty for built-ins)."""

    name: str
    source: ScenarioSource
    signals: int
    description: str
    files: tuple[Path, ...] = ()

    @property
    def config(self) -> Path | None:
        """The scenario's ``.sumocfg``, when it has one."""
        return next((f for f in self.files if f.suffix == ".sumocfg"), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source.value,
            "signals": self.signals,
            "description": self.description,
        }


def get_scenario(name_or_path: str | Path, registry: Registry | None = None) -> Scenario:
    """A scenario plugin's scenario by name, or a user's scenario by its ``.sumocfg`` path."""
    text = str(name_or_path)
    if text.endswith(".sumocfg") or Path(text).suffix == ".sumocfg":
        cfg = Path(text)
        if not cfg.is_file():
            raise ScenarioError("no such scenario file", where=text)
        files = config_files(cfg)
        return Scenario(
            name=cfg.stem,
            source=ScenarioSource.USER,
            signals=count_signals(files.net),
            description=f"user scenario {cfg}",
            files=(cfg.resolve(), files.net, *files.routes, *files.additional),
        )
    registry = registry or Registry()
    if text not in registry.ids(PluginKind.SCENARIO):
        known = ", ".join(registry.ids(PluginKind.SCENARIO))
        raise ScenarioError(
            f"unknown scenario {text!r}",
            hint=f"known: {known}; or give the path of a .sumocfg file",
        )
    plugin: ScenarioPlugin = registry.load(PluginKind.SCENARIO, text)()
    return plugin.locate()


def list_scenarios(registry: Registry | None = None) -> tuple[Scenario, ...]:
    """Every registered scenario whose files are installed here, by id."""
    registry = registry or Registry()
    found = []
    for name in registry.ids(PluginKind.SCENARIO):
        plugin: ScenarioPlugin = registry.load(PluginKind.SCENARIO, name)()
        try:
            found.append(plugin.locate())
        except ScenarioError:  # its package (sumo-rl for RESCO) is not installed
            continue
    return tuple(found)


class ScenarioPlugin(ABC):
    """Base class of scenario plugins (kind ``scenario``).

    ``locate`` says what the scenario is without writing anything (a
    ScenarioError when its files are not installed); ``files`` puts the
    network and demand of one run into ``folder`` (copied, or generated
    from ``seed`` for ``seconds`` of demand) and returns them. The result
    of ``locate`` is cached per process: it may read the network once.
    """

    meta: ClassVar[PluginMeta]

    @final
    def locate(self) -> Scenario:
        return _located(type(self))

    @abstractmethod
    def _locate(self) -> Scenario:
        """The scenario: name, source, signals, description and original files."""

    @abstractmethod
    def files(self, folder: Path, *, seed: int, seconds: float) -> ConfigFiles:
        """The run's own network and demand files, inside ``folder``."""


@cache
def _located(cls: type[ScenarioPlugin]) -> Scenario:
    return cls()._locate()


def copy_config(cfg: Path, folder: Path) -> ConfigFiles:
    """The files a ``.sumocfg`` names, copied into ``folder``."""
    original = config_files(cfg)
    taken: set[str] = set()
    return ConfigFiles(
        net=_copy(original.net, folder, taken),
        routes=tuple(_copy(p, folder, taken) for p in original.routes),
        additional=tuple(_copy(p, folder, taken) for p in original.additional),
        begin=original.begin,
        end=original.end,
    )


def count_signals(net: Path) -> int:
    """The traffic-light systems a network file defines."""
    return len(set(_TLS_ID.findall(net.read_bytes())))


_TLS_ID = re.compile(rb'<tlLogic\s+id="([^"]*)"')


# -- reading a .sumocfg ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigFiles:
    """The files of a SUMO configuration: network, demand, additional files, time span."""

    net: Path
    routes: tuple[Path, ...]
    additional: tuple[Path, ...]
    begin: float
    end: float | None


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"[,\s]+", value) if v]


def config_files(cfg: Path) -> ConfigFiles:
    where = str(cfg)
    try:
        root = ET.parse(cfg).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ScenarioError(f"not a readable SUMO configuration: {exc}", where=where) from None
    values: dict[str, str] = {}
    for element in root.iter():
        if "value" in element.attrib:
            values[element.tag] = element.attrib["value"]
    if "net-file" not in values:
        raise ScenarioError("the configuration names no net-file", where=where)

    def paths(key: str) -> tuple[Path, ...]:
        found = tuple((cfg.parent / p).resolve() for p in _split(values.get(key, "")))
        for path in found:
            if not path.is_file():
                raise ScenarioError(f"{key} {path.name} does not exist", where=where)
        return found

    try:
        begin = float(values.get("begin", "0"))
        end = float(values["end"]) if "end" in values else None
    except ValueError:
        raise ScenarioError("begin/end are not numbers of seconds", where=where) from None
    return ConfigFiles(
        net=paths("net-file")[0],
        routes=paths("route-files"),
        additional=paths("additional-files"),
        begin=begin,
        end=end,
    )


# -- the per-run copy -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """A scenario copied into a run folder, with detectors and groups added."""

    scenario: Scenario
    folder: Path
    config: Path  # the run's own .sumocfg (net and demand only)
    additional: tuple[Path, ...]  # the scenario's own additional files, copied
    detectors: Path
    actuated: Path
    network: NetworkInfo
    begin: float
    seed: int
    demand: float


def prepare_run(
    scenario: Scenario,
    folder: Path,
    *,
    seed: int,
    seconds: float,
    demand: float = 1.0,
    min_green_s: float = DEFAULT_MIN_GREEN_S,
    max_green_s: float = DEFAULT_MAX_GREEN_S,
    detector_period_s: int = DETECTOR_PERIOD_S,
    registry: Registry | None = None,
) -> PreparedRun:
    """Copy (or generate) the scenario into ``folder`` and add detectors and groups.

    ``detector_period_s`` is the aggregation period of the detectors' output
    files (``e1.out.xml``, ``e2.out.xml``); the world itself reads the
    detectors live, so it changes only what those files hold.
    """
    check_seed(seed)
    if not demand > 0:
        raise ScenarioError(f"demand must be a positive scale factor, got {demand}")
    if isinstance(detector_period_s, bool) or not (
        isinstance(detector_period_s, int) and detector_period_s > 0
    ):
        raise ScenarioError(
            f"the detector period must be a positive whole number of seconds, "
            f"got {detector_period_s!r}"
        )
    copy_dir = folder / "scenario"
    copy_dir.mkdir(parents=True, exist_ok=True)
    if scenario.source is ScenarioSource.USER:
        assert scenario.config is not None
        files = copy_config(scenario.config, copy_dir)
    else:
        plugin: ScenarioPlugin = (registry or Registry()).load(PluginKind.SCENARIO, scenario.name)()
        files = plugin.files(copy_dir, seed=seed, seconds=seconds)
    config = folder / "scenario.sumocfg"
    _write_config(config, files)

    sumo_tools()
    sumolib = load_sumolib()
    try:
        net = sumolib.net.readNet(str(files.net), withPrograms=True)
    except Exception as exc:  # sumolib raises bare exceptions on bad XML
        raise ScenarioError(f"cannot read the network: {exc}", where=str(files.net)) from None
    network = _network_info(net, files, min_green_s=min_green_s, max_green_s=max_green_s)
    if not network.intersections:
        raise ScenarioError(
            "the network has no traffic lights to control",
            where=str(scenario.files[1] if scenario.files else files.net),
        )
    detectors = folder / DETECTORS_FILE
    _write_detectors(detectors, net, network, period_s=detector_period_s)
    actuated = folder / "actuated.add.xml"
    _write_actuated(actuated, network, min_green_s=min_green_s, max_green_s=max_green_s)
    (folder / "network.json").write_text(_dumps(network.to_json()))
    return PreparedRun(
        scenario=scenario,
        folder=folder,
        config=config,
        additional=files.additional,
        detectors=detectors,
        actuated=actuated,
        network=network,
        begin=files.begin,
        seed=seed,
        demand=demand,
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)


def _copy(path: Path, folder: Path, taken: set[str]) -> Path:
    # A file left by an earlier run into the same folder is overwritten; two
    # files of this scenario with one name would be a real clash.
    if path.name in taken:
        raise ScenarioError(f"two scenario files are both named {path.name}", where=str(path))
    taken.add(path.name)
    target = folder / path.name
    shutil.copyfile(path, target)
    return target


def _write_config(path: Path, files: ConfigFiles) -> None:
    routes = ",".join(p.name for p in files.routes)
    lines = [
        "<configuration>",
        "  <input>",
        f"    <net-file value={quoteattr('scenario/' + files.net.name)}/>",
    ]
    if routes:
        lines.append(
            "    <route-files value="
            + quoteattr(",".join("scenario/" + p.name for p in files.routes))
            + "/>"
        )
    lines += [
        "  </input>",
        "  <time>",
        f'    <begin value="{files.begin:g}"/>',
        "  </time>",
        "</configuration>",
        "",
    ]
    path.write_text("\n".join(lines))


_VEHICLE_CLASSES = ("passenger", "bus", "truck", "emergency", "delivery", "taxi", "tram")


def _network_info(
    net: Any, files: ConfigFiles, *, min_green_s: float, max_green_s: float
) -> NetworkInfo:
    intersections = []
    approach_edges: set[str] = set()
    for tls in sorted(net.getTrafficLights(), key=lambda t: t.getID()):
        programs = tls.getPrograms()
        if not programs:
            continue
        # The first program listed is the one SUMO starts with.
        program_id, program = next(iter(programs.items()))
        phases = tuple(
            Phase(
                state=p.state,
                duration=float(p.duration),
                min_dur=float(p.minDur) if p.minDur is not None and p.minDur >= 0 else None,
                max_dur=float(p.maxDur) if p.maxDur is not None and p.maxDur >= 0 else None,
            )
            for p in program.getPhases()
        )
        width = len(phases[0].state)
        links: list[tuple[str, str]] = [("", "")] * width
        lanes: dict[str, float] = {}
        for in_lane, out_lane, index in tls.getConnections():
            if 0 <= index < width:
                links[index] = (in_lane.getID(), out_lane.getID())
            if any(in_lane.allows(c) for c in _VEHICLE_CLASSES):
                # As written into detectors.add.xml (two decimals), so both agree exactly.
                e2_m = min(float(in_lane.getLength()), E2_LENGTH_M)
                lanes[in_lane.getID()] = float(f"{e2_m:.2f}")
                approach_edges.add(in_lane.getEdge().getID())
        intersections.append(
            Intersection(
                id=tls.getID(),
                program_id=str(program_id),
                phases=phases,
                links=tuple(links),
                lanes=tuple(lanes),
                detector_m=tuple(lanes.values()),
            )
        )
    (x0, y0), (x1, y1) = net.getBBoxXY()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    districts = {}
    for edge in net.getEdges():
        (ax, ay), (bx, by) = edge.getFromNode().getCoord(), edge.getToNode().getCoord()
        mx, my = (ax + bx) / 2, (ay + by) / 2
        districts[edge.getID()] = ("N" if my >= cy else "S") + ("E" if mx >= cx else "W")
    return NetworkInfo(
        intersections=tuple(intersections),
        vclass_of_vtype=_vehicle_classes((*files.routes, *files.additional)),
        district_of_edge=districts,
        approach_edges=frozenset(approach_edges),
    )


def _vehicle_classes(paths: Iterable[Path]) -> dict[str, str]:
    # SUMO's default type is a passenger car; a vType without vClass is too.
    found = {"DEFAULT_VEHTYPE": "passenger"}
    for path in paths:
        try:
            for _, element in ET.iterparse(path):
                if element.tag == "vType" and "id" in element.attrib:
                    found[element.attrib["id"]] = element.attrib.get("vClass", "passenger")
                element.clear()
        except ET.ParseError as exc:
            raise ScenarioError(f"not readable XML: {exc}", where=str(path)) from None
    return found


def _write_detectors(path: Path, net: Any, network: NetworkInfo, *, period_s: int) -> None:
    lines = ["<additional>"]
    for intersection in network.intersections:
        for lane_id in intersection.lanes:
            length = float(net.getLane(lane_id).getLength())
            lane = quoteattr(lane_id)
            e1_pos = max(0.0, length - E1_SETBACK_M)
            e2_len = min(length, E2_LENGTH_M)  # the network's detector_m, as written here
            lines.append(
                f'  <inductionLoop id={quoteattr(e1_id(lane_id))} lane={lane} pos="{e1_pos:.2f}"'
                f' period="{period_s}" file="e1.out.xml" friendlyPos="true"/>'
            )
            lines.append(
                f"  <laneAreaDetector id={quoteattr(e2_id(lane_id))} lane={lane}"
                f' pos="{length - e2_len:.2f}" length="{e2_len:.2f}"'
                f' period="{period_s}" file="e2.out.xml" friendlyPos="true"/>'
            )
    lines += ["</additional>", ""]
    path.write_text("\n".join(lines))


ACTUATED_PROGRAM = "cityx-actuated"


def _write_actuated(
    path: Path, network: NetworkInfo, *, min_green_s: float, max_green_s: float
) -> None:
    # The same phases as the network's own program, but SUMO extends each
    # green while its (SUMO-made) detectors see a steady stream of vehicles.
    lines = ["<additional>"]
    for intersection in network.intersections:
        lines.append(
            f'  <tlLogic id={quoteattr(intersection.id)} type="actuated"'
            f' programID="{ACTUATED_PROGRAM}" offset="0">'
        )
        for phase in intersection.phases:
            bounds = ""
            if phase.is_green:
                low = phase.min_dur if phase.min_dur is not None else min_green_s
                high = phase.max_dur if phase.max_dur is not None else max_green_s
                low, high = max(low, min_green_s), min(max(high, low), max_green_s)
                bounds = f' minDur="{low:g}" maxDur="{high:g}"'
            lines.append(
                f'    <phase duration="{phase.duration:g}" state="{phase.state}"{bounds}/>'
            )
        lines.append("  </tlLogic>")
    lines += ["</additional>", ""]
    path.write_text("\n".join(lines))


__all__ = [
    "ACTUATED_PROGRAM",
    "ConfigFiles",
    "PreparedRun",
    "Scenario",
    "ScenarioPlugin",
    "ScenarioSource",
    "config_files",
    "copy_config",
    "count_signals",
    "get_scenario",
    "list_scenarios",
    "prepare_run",
]
