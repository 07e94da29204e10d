"""A baseline controller's run watched by the independent conflict monitor.

The monitor (:mod:`.monitor`) shares nothing with the envelope; this module
only drives a world for it: one of the city's own signal modes (fixed-time
program, SUMO's actuated control, or max-pressure through the envelope),
observed at every step. ``inject``, called before each step with the
running simulator, the seconds since the run began and the first
intersection's id, lets a test put a fault into SUMO that the monitor must
then count.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cityx.worlds.traffic import SignalMode, TrafficWorld, WorldOptions, get_scenario, prepare_run
from cityx.worlds.traffic.controllers import MaxPressure

from .monitor import ConflictMonitor, MonitorReport

Inject = Callable[[Any, float, str], None]


def monitor_baseline(
    scenario: str,
    folder: Path,
    mode: SignalMode,
    *,
    seed: int,
    seconds: int,
    inject: Inject | None = None,
) -> MonitorReport:
    """Run ``mode`` on ``scenario`` for ``seconds`` and return what the monitor saw."""
    run = prepare_run(
        get_scenario(scenario),
        folder,
        seed=seed,
        seconds=seconds,
        demand=1.0,
        min_green_s=5.0,
        max_green_s=90.0,
        detector_period_s=300,
    )
    world = TrafficWorld(run, WorldOptions(seconds=seconds, mode=mode))
    observation = world.reset(seed)
    monitor = ConflictMonitor()
    monitor.attach(world.simulation, [i.id for i in run.network.intersections])
    controller = MaxPressure(run.network) if mode is SignalMode.ENVELOPE else None
    first = run.network.intersections[0].id
    try:
        while not world.done:
            action = controller.act(observation) if controller and observation else None
            if inject is not None:
                inject(world.simulation, world.time_s - run.begin, first)
            observation = world.step(action)
            monitor.observe(world.simulation, world.time_s)
    finally:
        world.close()
    return monitor.report()


__all__ = ["Inject", "monitor_baseline"]
