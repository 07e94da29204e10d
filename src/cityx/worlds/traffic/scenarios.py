"""The scenario catalogue, and the per-run copy of a scenario.

A *scenario* is a SUMO road network with its demand (the vehicles that
want to travel). Three sources:

- ``resco``: the RESCO benchmark networks shipped by the ``sumo-rl``
  package (Cologne and Ingolstadt with real demand, and two synthetic
  4x4 grids), read in place from the installed package;
- ``builtin``: ``grid3x3``, a 3x3 signalised grid generated at run time
  with ``netgenerate`` and seeded ``randomTrips.py`` demand (cars, a bus
  line's worth of buses and a few emergency vehicles);
- ``user``: any ``.sumocfg`` file, given by its path.

A *run folder* holds the per-run copy: the network, demand and additional
files copied under ``scenario/``, a rewritten ``scenario.sumocfg``, the
generated ``detectors.add.xml`` (an induction loop, e1, near the stop line
and a lane-area detector, e2, over the last 100 m of every incoming lane of
every signalised intersection), ``actuated.add.xml`` (the network's own
programs turned into SUMO actuated programs) and ``network.json`` (see
:mod:`.network`). The originals are only ever read.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
from numpy.typing import NDArray

from cityx.core.seeding import check_seed, derive_seed

from ..errors import ScenarioError, WorldError
from .network import Intersection, NetworkInfo, Phase, e1_id, e2_id

E1_SETBACK_M = 5.0  # induction loop this far before the stop line
E2_LENGTH_M = 100.0  # lane-area detector over at most this much of the lane's end
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


_RESCO = {
    "cologne1": "Cologne, one signal; real morning-peak demand 07:00-08:00 (TAPAS Cologne)",
    "cologne3": "Cologne, a corridor of three signals; morning peak 07:00-08:00 (TAPAS Cologne)",
    "cologne8": "Cologne, eight signals; morning peak 07:00-08:00 (TAPAS Cologne)",
    "ingolstadt1": "Ingolstadt, one signal; afternoon 16:00-17:00 with buses (InTAS)",
    "ingolstadt7": "Ingolstadt, a corridor of seven signals; 16:00-17:00 with buses (InTAS)",
    "ingolstadt21": "Ingolstadt, 21 signals; 16:00-17:00 with buses (InTAS)",
    "grid4x4": "synthetic 4x4 grid of signals with one-hour demand (RESCO)",
    "arterial4x4": "synthetic 4x4 grid with a busy arterial (RESCO)",
}
GRID3X3 = Scenario(
    name="grid3x3",
    source=ScenarioSource.BUILTIN,
    signals=9,
    description="built-in 3x3 grid of 200 m blocks, generated with netgenerate; seeded random "
    "demand of cars, buses and emergency vehicles",
)
_TLS_ID = re.compile(rb'<tlLogic\s+id="([^"]*)"')


def _resco_folder() -> Path | None:
    # find_spec locates the package without importing it (sumo_rl imports
    # gymnasium and traci at import time).
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO"


def _count_signals(net: Path) -> int:
    return len(set(_TLS_ID.findall(net.read_bytes())))


def _resco(name: str, folder: Path) -> Scenario | None:
    cfg = folder / name / f"{name}.sumocfg"
    if not cfg.is_file():
        return None
    files = _config_files(cfg)
    return Scenario(
        name=name,
        source=ScenarioSource.RESCO,
        signals=_count_signals(files.net),
        description=_RESCO[name],
        files=(cfg, files.net, *files.routes, *files.additional),
    )


def list_scenarios() -> tuple[Scenario, ...]:
    """Every named scenario installed here: the built-in grid, then RESCO's."""
    folder = _resco_folder()
    found = [GRID3X3]
    if folder is not None:
        found += [s for s in (_resco(name, folder) for name in _RESCO) if s is not None]
    return tuple(found)


def get_scenario(name_or_path: str | Path) -> Scenario:
    """A catalogue scenario by name, or a user's scenario by its ``.sumocfg`` path."""
    text = str(name_or_path)
    if text.endswith(".sumocfg") or Path(text).suffix == ".sumocfg":
        cfg = Path(text)
        if not cfg.is_file():
            raise ScenarioError("no such scenario file", where=text)
        files = _config_files(cfg)
        return Scenario(
            name=cfg.stem,
            source=ScenarioSource.USER,
            signals=_count_signals(files.net),
            description=f"user scenario {cfg}",
            files=(cfg.resolve(), files.net, *files.routes, *files.additional),
        )
    for scenario in list_scenarios():
        if scenario.name == text:
            return scenario
    known = ", ".join(s.name for s in list_scenarios())
    extra = "" if _resco_folder() else " (install sumo-rl for the RESCO networks)"
    raise ScenarioError(
        f"unknown scenario {text!r}",
        hint=f"known: {known}{extra}; or give the path of a .sumocfg file",
    )


# -- reading a .sumocfg ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ConfigFiles:
    net: Path
    routes: tuple[Path, ...]
    additional: tuple[Path, ...]
    begin: float
    end: float | None


def _split(value: str) -> list[str]:
    return [v for v in re.split(r"[,\s]+", value) if v]


def _config_files(cfg: Path) -> _ConfigFiles:
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
    return _ConfigFiles(
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
) -> PreparedRun:
    """Copy (or generate) the scenario into ``folder`` and add detectors and groups.

    ``detector_period_s`` is the aggregation period of the detectors' output
    files (``e1.out.xml``, ``e2.out.xml``); the world itself reads the
    detectors live, so it changes only what those files hold.
    """
    from .sumo_env import load_sumolib, sumo_tools

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
    if scenario.source is ScenarioSource.BUILTIN:
        files = _generate_grid(copy_dir, seed=seed, seconds=seconds)
    else:
        assert scenario.config is not None
        original = _config_files(scenario.config)
        taken: set[str] = set()
        files = _ConfigFiles(
            net=_copy(original.net, copy_dir, taken),
            routes=tuple(_copy(p, copy_dir, taken) for p in original.routes),
            additional=tuple(_copy(p, copy_dir, taken) for p in original.additional),
            begin=original.begin,
            end=original.end,
        )
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
    import json

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


def _write_config(path: Path, files: _ConfigFiles) -> None:
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
    net: Any, files: _ConfigFiles, *, min_green_s: float, max_green_s: float
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
        lanes: dict[str, None] = {}
        for in_lane, out_lane, index in tls.getConnections():
            if 0 <= index < width:
                links[index] = (in_lane.getID(), out_lane.getID())
            if any(in_lane.allows(c) for c in _VEHICLE_CLASSES):
                lanes[in_lane.getID()] = None
                approach_edges.add(in_lane.getEdge().getID())
        intersections.append(
            Intersection(
                id=tls.getID(),
                program_id=str(program_id),
                phases=phases,
                links=tuple(links),
                lanes=tuple(lanes),
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
            e2_len = min(length, E2_LENGTH_M)
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


def e2_lengths(folder: Path, lanes: Sequence[str]) -> NDArray[np.float64]:
    """Each lane's lane-area detector length in metres, from a run's ``detectors.add.xml``.

    A lane without a detector entry (or a run without the file) gets
    :data:`E2_LENGTH_M`, the sandbox's default.
    """
    lengths = dict.fromkeys(lanes, E2_LENGTH_M)
    path = folder / DETECTORS_FILE
    if path.is_file():
        for node in ET.parse(path).getroot().iter("laneAreaDetector"):
            lane = node.get("lane")
            if lane in lengths:
                lengths[lane] = float(node.get("length", E2_LENGTH_M))
    return np.fromiter((lengths[lane] for lane in lanes), np.float64, len(lanes))


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


# -- the built-in grid ----------------------------------------------------------------

# (label, vehicle class or None for SUMO's default car, mean seconds between departures)
_GRID_DEMAND = (("car", None, 1.6), ("bus", "bus", 45.0), ("ev", "emergency", 240.0))


def _generate_grid(folder: Path, *, seed: int, seconds: float) -> _ConfigFiles:
    from .sumo_env import sumo_tools

    tools = sumo_tools()
    net = folder / "grid3x3.net.xml"
    _tool(
        [
            str(tools.netgenerate),
            "--grid",
            "--grid.number",
            "3",
            "--grid.length",
            "200",
            "--grid.attach-length",
            "200",
            "--default.lanenumber",
            "2",
            "--tls.guess",
            "true",
            "--tls.default-type",
            "static",
            "--no-turnarounds",
            "true",
            "--seed",
            str(derive_seed(seed, "grid3x3", "net") % 2**31),
            "--output-file",
            str(net),
        ],
        tools.tool_env(),
        where="netgenerate",
    )
    routes, commands = [], []
    for label, vclass, period in _GRID_DEMAND:
        out = folder / f"grid3x3.{label}.trips.xml"
        command = [
            sys.executable,
            str(tools.random_trips),
            "--net-file",
            str(net),
            "--output-trip-file",
            str(out),
            "--seed",
            str(derive_seed(seed, "grid3x3", label) % 2**31),
            "--begin",
            "0",
            "--end",
            f"{seconds:g}",
            "--period",
            f"{period:g}",
            "--fringe-factor",
            "10",
            "--min-distance",
            "300",
            "--prefix",
            label,
            # randomTrips validates some trips with duarouter into a routes file,
            # by default "routes.rou.xml" in the working folder: shared by the
            # three parallel runs, and litter. Give each its own, in the run folder.
            "--route-file",
            str(folder / f"grid3x3.{label}.rou.xml"),
        ]
        if vclass is not None:
            command += ["--vehicle-class", vclass]
        commands.append(command)
        routes.append(out)
    # The three demand files are independent: generate them side by side.
    _tools(commands, tools.tool_env(), where="randomTrips.py", cwd=folder)
    return _ConfigFiles(net=net, routes=tuple(routes), additional=(), begin=0.0, end=seconds)


def _tool(command: list[str], env: dict[str, str], *, where: str) -> None:
    _tools([command], env, where=where)


def _tools(
    commands: list[list[str]], env: dict[str, str], *, where: str, cwd: Path | None = None
) -> None:
    running = [
        subprocess.Popen(
            c,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for c in commands
    ]
    failures = []
    for process in running:
        output, _ = process.communicate()
        if process.returncode != 0:
            tail = " ".join(output.decode(errors="replace").split()[-40:])
            failures.append(f"exit code {process.returncode}: {tail}")
    if failures:
        raise WorldError(f"{where} failed with {failures[0]}", where=where)


__all__ = [
    "ACTUATED_PROGRAM",
    "GRID3X3",
    "PreparedRun",
    "Scenario",
    "ScenarioSource",
    "e2_lengths",
    "get_scenario",
    "list_scenarios",
    "prepare_run",
]
