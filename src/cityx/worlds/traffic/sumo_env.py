"""Finding Eclipse SUMO: the simulator, its tools and its Python bindings.

SUMO comes from the ``eclipse-sumo``, ``libsumo`` and ``sumolib`` wheels
(the optional extra ``cityx[sumo]``). *SUMO_HOME* is the folder holding
SUMO's ``bin/``, ``tools/`` and ``data/``; libsumo and sumolib read it from
the environment, so it is set here from ``import sumo`` before either is
imported. The *tools* are the executables this package runs:
``sumo`` (the simulator, for checks), ``netgenerate`` (synthetic networks),
``duarouter`` and ``randomTrips.py`` (random demand).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WorldError

_INSTALL_HINT = "install the SUMO extra: pip install 'cityx[sumo]'"


@dataclass(frozen=True, slots=True)
class SumoTools:
    """Where SUMO's pieces are on this machine, and which version they are."""

    home: Path
    version: str
    sumo: Path
    netgenerate: Path
    duarouter: Path
    random_trips: Path

    def tool_env(self) -> dict[str, str]:
        """The environment to run SUMO's tools in: SUMO_HOME set, sumolib importable."""
        env = dict(os.environ)
        env["SUMO_HOME"] = str(self.home)
        tools = str(self.home / "tools")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (tools, env.get("PYTHONPATH", "")) if p)
        return env


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise WorldError(
            f"Eclipse SUMO is not available: cannot import {name!r} ({exc})", hint=_INSTALL_HINT
        ) from exc


@functools.cache
def sumo_tools() -> SumoTools:
    """Locate SUMO from its wheel and set ``SUMO_HOME`` (raises :class:`WorldError`)."""
    sumo = _import("sumo")
    home = Path(sumo.SUMO_HOME)
    # The wheel's own SUMO_HOME wins over a stale one in the environment: the
    # tools, the bindings and the data files must all be the same version.
    os.environ["SUMO_HOME"] = str(home)
    exe = ".exe" if sys.platform == "win32" else ""
    tools = SumoTools(
        home=home,
        version=_version(),
        sumo=home / "bin" / f"sumo{exe}",
        netgenerate=home / "bin" / f"netgenerate{exe}",
        duarouter=home / "bin" / f"duarouter{exe}",
        random_trips=home / "tools" / "randomTrips.py",
    )
    for path in (tools.sumo, tools.netgenerate, tools.duarouter, tools.random_trips):
        if not path.is_file():
            raise WorldError(
                f"the SUMO installation has no {path.name}",
                where=str(path.parent),
                hint=_INSTALL_HINT,
            )
    return tools


def _version() -> str:
    # The wheel is named eclipse-sumo; ``sumo.__version__`` looks up "sumo" and says 0.0.0.
    try:
        return importlib.metadata.version("eclipse-sumo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_libsumo() -> Any:
    """The libsumo module (in-process SUMO), with SUMO_HOME set first."""
    sumo_tools()
    # libsumo prints a pyarrow version notice on stdout at import unless told
    # to be quiet; stdout belongs to the JSON front end.
    os.environ.setdefault("LIBSUMO_AS_TRACI", "quiet")
    return _import("libsumo")


def load_sumolib() -> Any:
    """The sumolib module (network and output readers), with SUMO_HOME set first."""
    sumo_tools()
    return _import("sumolib")


__all__ = ["SumoTools", "load_libsumo", "load_sumolib", "sumo_tools"]
