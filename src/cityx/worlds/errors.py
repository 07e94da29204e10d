"""The sandbox world's errors, under the :mod:`cityx.core.errors` tree::

    CityxError
    ├── InputError
    │   └── ScenarioError     an unknown scenario name, or a scenario file that is broken
    └── WorldError            the simulator is missing, failed to start or crashed
        └── WorldCrashed      the run stopped before its end; partial outputs are kept
            └── ControllerFailed  the controller under test crashed, hung or answered nonsense

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
    """The run stopped before its end: the simulation's child process died.

    ``partial`` holds what could be read from the outputs written so far
    (marked ``complete=False``), or ``None`` when nothing could be read.
    """

    def __init__(self, message: str, *, partial: WorldResult | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial = partial


class ControllerFailed(WorldCrashed):
    """The controller under test crashed, overran its per-step timeout or gave an
    answer the sandbox cannot use; the simulation was ended and its outputs kept."""


class ScenarioError(InputError):
    """A scenario name is unknown or a scenario's files are broken."""


__all__ = ["ControllerFailed", "ScenarioError", "WorldCrashed", "WorldError"]
