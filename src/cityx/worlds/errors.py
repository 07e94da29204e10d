"""The sandbox world's errors, under the :mod:`cityx.core.errors` tree::

    CityxError
    ├── InputError
    │   └── ScenarioError     an unknown scenario name, or a scenario file that is broken
    └── WorldError            the simulator is missing, failed to start or crashed
        └── WorldCrashed      the simulation's child process died; partial outputs are kept

Messages are one line and name the scenario or file they are about.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cityx.core.errors import CityxError, InputError

if TYPE_CHECKING:
    from .traffic.runner import WorldResult


class WorldError(CityxError):
    """The simulated world could not be set up or run."""


class WorldCrashed(WorldError):
    """The child process that ran the simulation died before it finished.

    ``partial`` holds what could be read from the outputs written so far
    (marked ``complete=False``), or ``None`` when nothing could be read.
    """

    def __init__(self, message: str, *, partial: WorldResult | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial = partial


class ScenarioError(InputError):
    """A scenario name is unknown or a scenario's files are broken."""


__all__ = ["ScenarioError", "WorldCrashed", "WorldError"]
