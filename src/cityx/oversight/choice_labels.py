"""Choices labelled right or wrong by roll-outs in the sandbox (ground truth for calibration).

Words used (the whole story is in :mod:`cityx.oversight.confidence`):

- *decision point*: one intersection's choice at one step of a labelling run
  (every ``every_s`` seconds after a warm-up), where the choice has a runner-up;
- *roll-out*: from a decision point the whole simulation is copied (the process
  is forked) and run ``horizon_s`` seconds further with that intersection
  asking for one phase all along, every other intersection following the
  controller;
- *cost*: halting vehicle-seconds on every detected lane over the horizon;
- *right*: the chosen phase's roll-out cost no more than the runner-up's;
- *features* (:data:`FEATURES`): what a calibration reads of one choice.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import Action, InputError, Observation
from cityx.worlds.errors import WorldError
from cityx.worlds.traffic import SignalMode, TrafficWorld, WorldOptions, get_scenario, prepare_run
from cityx.worlds.traffic.candidates import FEATURE_NAMES
from cityx.worlds.traffic.choices import ControllerChoice
from cityx.worlds.traffic.controllers import MaxPressure

LABELS_SCHEMA = "choice-label/v1"
FEATURES: tuple[str, ...] = (
    "margin_log",  # log1p(margin)
    "margin_rel",  # margin / (|chosen| + |runner-up| + 1)
    "keeps_green",  # 1 when the choice is the green shown
    "phase_age",  # min(age, 90) / 90
    "queue_log",  # log1p(queue at the intersection)
    "phases",  # number of candidate phases
)

_QUEUE = FEATURE_NAMES.index("queue_total")
_AGE = FEATURE_NAMES.index("phase_age_s")


def choice_features(choice: ControllerChoice) -> tuple[float, ...]:
    """The calibration's inputs for one choice (the same at labelling and at run time)."""
    margin = max(choice.margin or 0.0, 0.0)
    chosen = choice.score(choice.chosen_phase)
    runner = choice.score(choice.runner_up_phase) if choice.runner_up_phase is not None else 0.0
    row = choice.row(choice.chosen_phase)
    by_name = dict(zip(choice.columns, row, strict=True))
    queue = float(by_name.get("queue_total", 0.0))
    age = float(by_name.get("phase_age_s", 0.0))
    return (
        float(np.log1p(margin)),
        margin / (abs(chosen) + abs(runner) + 1.0),
        1.0 if choice.chosen_phase == choice.current_phase else 0.0,
        min(max(age, 0.0), 90.0) / 90.0,
        float(np.log1p(max(queue, 0.0))),
        float(len(choice.phases)),
    )


@dataclass(frozen=True, slots=True)
class LabelledChoice:
    """One decision point with both roll-outs' costs."""

    scenario: str
    seed: int
    time_s: float
    intersection: str
    chosen: int
    runner_up: int
    margin: float
    features: tuple[float, ...]
    cost_chosen: float
    cost_runner_up: float

    @property
    def right(self) -> bool:
        return self.cost_chosen <= self.cost_runner_up

    @property
    def run(self) -> str:
        return f"{self.scenario}:{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": LABELS_SCHEMA,
            "scenario": self.scenario,
            "seed": self.seed,
            "time_s": self.time_s,
            "intersection": self.intersection,
            "chosen": self.chosen,
            "runner_up": self.runner_up,
            "margin": self.margin,
            "features": list(self.features),
            "cost_chosen": self.cost_chosen,
            "cost_runner_up": self.cost_runner_up,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> LabelledChoice:
        if obj.get("schema") != LABELS_SCHEMA:
            raise InputError(f"not a {LABELS_SCHEMA} record (schema {obj.get('schema')!r})")
        return cls(
            scenario=str(obj["scenario"]),
            seed=int(obj["seed"]),
            time_s=float(obj["time_s"]),
            intersection=str(obj["intersection"]),
            chosen=int(obj["chosen"]),
            runner_up=int(obj["runner_up"]),
            margin=float(obj["margin"]),
            features=tuple(float(v) for v in obj["features"]),
            cost_chosen=float(obj["cost_chosen"]),
            cost_runner_up=float(obj["cost_runner_up"]),
        )


# -- ground truth: roll-outs ---------------------------------------------------------


def _rollout(
    world: TrafficWorld,
    controller: MaxPressure,
    observation: Observation,
    intersection: str,
    phase: int,
    horizon_s: int,
) -> float:
    """The cost of holding ``phase`` at ``intersection`` for the horizon, in a forked copy."""
    if not hasattr(os, "fork"):
        raise WorldError("roll-outs copy the simulation by forking the process: POSIX only")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: run, report, and leave without any cleanup of the parent's files
        os.close(read)
        code = 1
        try:
            cost, obs = 0.0, observation
            for _ in range(horizon_s):
                phases = dict(controller.act(obs).phases)
                phases[intersection] = phase
                stepped = world.step(Action(phases=phases))
                assert stepped is not None
                obs = stepped
                cost += float(obs.halting.sum())
            os.write(write, struct.pack("<d", cost))
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    data = b""
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(data) != 8:
        raise WorldError(
            f"the roll-out of phase {phase} at {intersection!r} failed (exit status {status})"
        )
    return float(struct.unpack("<d", data)[0])


def label_run(
    scenario: str,
    seed: int,
    folder: Path,
    *,
    seconds: int = 600,
    horizon_s: int = 20,
    every_s: int = 10,
    warmup_s: int = 60,
    demand: float = 1.0,
) -> tuple[LabelledChoice, ...]:
    """Run max-pressure on ``scenario`` and label its choices by roll-outs.

    The run's own outputs in ``folder`` are not a trial's: forked copies may
    have written to the same files. Runs in this process (libsumo).
    """
    if horizon_s < 1 or every_s < 1 or warmup_s < 0:
        raise InputError("horizon_s and every_s must be at least 1, warmup_s at least 0")
    run = prepare_run(
        get_scenario(scenario),
        folder,
        seed=seed,
        seconds=seconds,
        demand=demand,
        detector_period_s=300,
    )
    world = TrafficWorld(run, WorldOptions(seconds=seconds, mode=SignalMode.ENVELOPE))
    observation = world.reset(seed)
    controller = MaxPressure(run.network)
    out: list[LabelledChoice] = []
    try:
        while not world.done:
            assert observation is not None
            now = round(world.time_s - run.begin)
            action = controller.act(observation)
            choices = controller.take_choices()
            due = now >= warmup_s and (now - warmup_s) % every_s == 0
            if due and now + horizon_s <= seconds:
                for c in choices:
                    if c.runner_up_phase is None:
                        continue
                    costs = [
                        _rollout(world, controller, observation, c.intersection, p, horizon_s)
                        for p in (c.chosen_phase, c.runner_up_phase)
                    ]
                    out.append(
                        LabelledChoice(
                            scenario=scenario,
                            seed=seed,
                            time_s=float(now),
                            intersection=c.intersection,
                            chosen=c.chosen_phase,
                            runner_up=c.runner_up_phase,
                            margin=float(c.margin or 0.0),
                            features=choice_features(c),
                            cost_chosen=costs[0],
                            cost_runner_up=costs[1],
                        )
                    )
            observation = world.step(action)
    finally:
        world.close()
    return tuple(out)


def read_labels(path: Path) -> list[LabelledChoice]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(LabelledChoice.from_json(json.loads(line)))
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"line {n} is not a {LABELS_SCHEMA} record: {exc}") from exc
    return out


def write_labels(path: Path, labelled: Iterable[LabelledChoice]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for c in labelled:
            f.write(json.dumps(c.to_json()) + "\n")


__all__ = [
    "FEATURES",
    "LABELS_SCHEMA",
    "LabelledChoice",
    "choice_features",
    "label_run",
    "read_labels",
    "write_labels",
]
