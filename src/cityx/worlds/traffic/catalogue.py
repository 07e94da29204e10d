"""The scenario plugins cityx ships: a generated grid and the RESCO networks.

- ``grid3x3`` (source ``builtin``): a 3x3 signalised grid generated at run
  time with ``netgenerate`` and seeded ``randomTrips.py`` demand (cars, a
  bus line's worth of buses and a few emergency vehicles);
- the RESCO benchmark networks (source ``resco``) shipped by the
  ``sumo-rl`` package: Cologne and Ingolstadt with real demand, and two
  synthetic 4x4 grids, read in place from the installed package.

A user's own ``.sumocfg`` needs no plugin: :func:`~.scenarios.get_scenario`
takes its path.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from cityx.core import NistFunction, PluginKind, PluginMeta, Principle, Tags, derive_seed

from ..errors import ScenarioError, WorldError
from .scenarios import (
    ConfigFiles,
    Scenario,
    ScenarioPlugin,
    ScenarioSource,
    config_files,
    copy_config,
    count_signals,
)
from .sumo_env import sumo_tools


def _meta(name: str, summary: str) -> PluginMeta:
    return PluginMeta(
        id=name,
        kind=PluginKind.SCENARIO,
        version="1",
        summary=summary,
        tags=Tags(Principle.SAFETY, NistFunction.MAP),
        supports=frozenset({"controller"}),
    )


class Grid3x3(ScenarioPlugin):
    meta: ClassVar[PluginMeta] = _meta(
        "grid3x3",
        "built-in 3x3 grid of 200 m blocks, generated with netgenerate; seeded random "
        "demand of cars, buses and emergency vehicles",
    )

    def _locate(self) -> Scenario:
        return Scenario(
            name=self.meta.id,
            source=ScenarioSource.BUILTIN,
            signals=9,
            description=self.meta.summary,
        )

    def files(self, folder: Path, *, seed: int, seconds: float) -> ConfigFiles:
        return _generate_grid(folder, seed=seed, seconds=seconds)


def _resco_folder() -> Path | None:
    # find_spec locates the package without importing it (sumo_rl imports
    # gymnasium and traci at import time).
    spec = importlib.util.find_spec("sumo_rl")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO"


class RescoScenario(ScenarioPlugin):
    """A RESCO network of the installed ``sumo-rl`` package; its id names its folder."""

    def _config(self) -> Path:
        folder = _resco_folder()
        name = self.meta.id
        cfg = folder / name / f"{name}.sumocfg" if folder is not None else None
        if cfg is None or not cfg.is_file():
            raise ScenarioError(
                f"scenario {name!r} needs the RESCO networks of sumo-rl",
                hint="install the sandbox extra: pip install 'cityx[sumo]'",
            )
        return cfg

    def _locate(self) -> Scenario:
        cfg = self._config()
        files = config_files(cfg)
        return Scenario(
            name=self.meta.id,
            source=ScenarioSource.RESCO,
            signals=count_signals(files.net),
            description=self.meta.summary,
            files=(cfg, files.net, *files.routes, *files.additional),
        )

    def files(self, folder: Path, *, seed: int, seconds: float) -> ConfigFiles:
        return copy_config(self._config(), folder)


def _resco(name: str, summary: str) -> type[RescoScenario]:
    """The plugin class of one RESCO network (the registry names it by module attribute)."""
    return type(name.capitalize(), (RescoScenario,), {"meta": _meta(name, summary)})


Cologne1 = _resco(
    "cologne1", "Cologne, one signal; real morning-peak demand 07:00-08:00 (TAPAS Cologne)"
)
Cologne3 = _resco(
    "cologne3", "Cologne, a corridor of three signals; morning peak 07:00-08:00 (TAPAS Cologne)"
)
Cologne8 = _resco("cologne8", "Cologne, eight signals; morning peak 07:00-08:00 (TAPAS Cologne)")
Ingolstadt1 = _resco(
    "ingolstadt1", "Ingolstadt, one signal; afternoon 16:00-17:00 with buses (InTAS)"
)
Ingolstadt7 = _resco(
    "ingolstadt7", "Ingolstadt, a corridor of seven signals; 16:00-17:00 with buses (InTAS)"
)
Ingolstadt21 = _resco("ingolstadt21", "Ingolstadt, 21 signals; 16:00-17:00 with buses (InTAS)")
Grid4x4 = _resco("grid4x4", "synthetic 4x4 grid of signals with one-hour demand (RESCO)")
Arterial4x4 = _resco("arterial4x4", "synthetic 4x4 grid with a busy arterial (RESCO)")


# (label, vehicle class or None for SUMO's default car, mean seconds between departures)
_GRID_DEMAND = (("car", None, 1.6), ("bus", "bus", 45.0), ("ev", "emergency", 240.0))


def _generate_grid(folder: Path, *, seed: int, seconds: float) -> ConfigFiles:
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
    return ConfigFiles(net=net, routes=tuple(routes), additional=(), begin=0.0, end=seconds)


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
    "Arterial4x4",
    "Cologne1",
    "Cologne3",
    "Cologne8",
    "Grid3x3",
    "Grid4x4",
    "Ingolstadt1",
    "Ingolstadt7",
    "Ingolstadt21",
    "RescoScenario",
]
