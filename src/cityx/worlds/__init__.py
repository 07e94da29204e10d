"""The sandbox worlds: simulated cities a controller under test runs in.

Only :mod:`cityx.worlds.traffic` exists today: Eclipse SUMO road networks
with signalised *intersections*. Importing this package imports no
simulator; SUMO is loaded when a world is prepared or run (the optional
extra ``cityx[sumo]``).
"""

from .errors import ControllerFailed, ScenarioError, WorldCrashed, WorldError

__all__ = ["ControllerFailed", "ScenarioError", "WorldCrashed", "WorldError"]
