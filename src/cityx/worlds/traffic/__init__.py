"""The SUMO city sandbox: scenarios, the world loop, baselines, the envelope, KPIs.

Importing this package loads no simulator. Words used across it:
*scenario* (network + demand, :mod:`.scenarios`), *intersection*, *phase*
and *group* (:mod:`.network`), *signal mode* and *observation*
(:mod:`.world`), *safety envelope* (:mod:`.safety`), *controller plugin*
and *baseline* (:mod:`.controllers`), *scenario plugin* (:mod:`.scenarios`,
:mod:`.catalogue`), *trip*, *backlog* and *teleport* (:mod:`.kpis`), *trip
table* (:class:`cityx.core.TripTable`, its file in :mod:`.trips`).
"""

from .controllers import (
    ControllerPlugin,
    MaxPressure,
    controller_plugin,
    is_controller_plugin,
    reads_observations,
)
from .kpis import Kpis, compute_kpis, trip_table
from .network import Intersection, NetworkInfo, Phase
from .runner import WorldResult, WorldSpec, run_world, simulate
from .safety import Refusal, SafetyEnvelope, SafetyReport, StopStatus
from .scenarios import (
    PreparedRun,
    Scenario,
    ScenarioPlugin,
    ScenarioSource,
    get_scenario,
    list_scenarios,
    prepare_run,
)
from .sumo_env import SumoTools, sumo_tools
from .trips import TRIPS_FILE, load_trips, read_trips, write_trips
from .world import SignalMode, TrafficWorld, WorldOptions

__all__ = [
    "TRIPS_FILE",
    "ControllerPlugin",
    "Intersection",
    "Kpis",
    "MaxPressure",
    "NetworkInfo",
    "Phase",
    "PreparedRun",
    "Refusal",
    "SafetyEnvelope",
    "SafetyReport",
    "Scenario",
    "ScenarioPlugin",
    "ScenarioSource",
    "SignalMode",
    "StopStatus",
    "SumoTools",
    "TrafficWorld",
    "WorldOptions",
    "WorldResult",
    "WorldSpec",
    "compute_kpis",
    "controller_plugin",
    "get_scenario",
    "is_controller_plugin",
    "list_scenarios",
    "load_trips",
    "prepare_run",
    "read_trips",
    "reads_observations",
    "run_world",
    "simulate",
    "sumo_tools",
    "trip_table",
    "write_trips",
]
