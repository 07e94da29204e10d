"""Demonstrations: what a teacher controller chose, as phase-candidate rows.

A *demonstration* run drives the world with a teacher (max-pressure by
default) and records, every ``every_s`` simulated seconds, the
:mod:`.candidates` feature rows of all intersections with a label
``chosen`` (1 for the phase the teacher asked for, else 0). An imitation
model trained on them is a controller submission's model; the same table
is what a poisoning attack on a controller's training data targets.

Each run is a simulation of its own, so it runs in a fresh process.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cityx.core.errors import InputError
from cityx.core.seeding import check_seed

from .candidates import FEATURE_NAMES, PhaseCandidates
from .controllers import MaxPressure
from .scenarios import get_scenario, prepare_run
from .world import SignalMode, TrafficWorld, WorldOptions

LABEL = "chosen"
KEYS = ("scenario", "seed", "demand", "time_s", "intersection", "phase")


@dataclass(frozen=True, slots=True)
class DemonstrationSpec:
    """Which runs to record: scenario x seeds x demand levels, and how often."""

    scenario: str
    seeds: tuple[int, ...]
    demands: tuple[float, ...] = (1.0,)
    seconds: int = 600
    every_s: int = 5
    teacher: str = "max-pressure"

    def __post_init__(self) -> None:
        for seed in self.seeds:
            check_seed(seed)
        if not self.seeds or not self.demands:
            raise InputError("a demonstration needs at least one seed and one demand level")
        if self.every_s <= 0 or self.seconds <= 0:
            raise InputError("seconds and every_s must be positive")
        if self.teacher != "max-pressure":
            raise InputError(f"unknown teacher {self.teacher!r}", hint="known: max-pressure")


def record_demonstrations(spec: DemonstrationSpec, *, workers: int = 1) -> pd.DataFrame:
    """All runs' rows, sorted by :data:`KEYS`; the same spec gives the same table."""
    runs = [(seed, demand) for demand in spec.demands for seed in spec.seeds]
    # A fresh process per run: libsumo holds one simulation per process.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        frames = list(pool.map(_record_one, [spec] * len(runs), *zip(*runs, strict=True)))
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(list(KEYS), kind="mergesort").reset_index(drop=True)


def _record_one(spec: DemonstrationSpec, seed: int, demand: float) -> pd.DataFrame:
    with tempfile.TemporaryDirectory(prefix="cityx-demo-run-") as tmp:
        run = prepare_run(
            get_scenario(spec.scenario), Path(tmp), seed=seed, seconds=spec.seconds, demand=demand
        )
        candidates = PhaseCandidates.from_network(run.network)
        teacher = MaxPressure(run.network)
        world = TrafficWorld(run, WorldOptions(seconds=spec.seconds, mode=SignalMode.ENVELOPE))
        blocks: list[np.ndarray] = []
        chosen: list[np.ndarray] = []
        times: list[float] = []
        observation = world.reset(seed)
        try:
            while not world.done:
                assert observation is not None
                action = teacher.act(observation)
                if int(observation.time_s - run.begin) % spec.every_s == 0:
                    asked = np.array(
                        [action.phases.get(t, -1) for t in candidates.intersection_ids]
                    )
                    blocks.append(candidates.features(observation))
                    chosen.append(asked[candidates.row_intersection] == candidates.row_phase)
                    times.append(observation.time_s)
                observation = world.step(action)
        finally:
            world.close()
    n = candidates.rows
    frame = pd.DataFrame(np.vstack(blocks), columns=list(FEATURE_NAMES))
    frame.insert(0, "phase", np.tile(candidates.row_phase, len(times)))
    frame.insert(
        0,
        "intersection",
        np.tile(np.asarray(candidates.intersection_ids)[candidates.row_intersection], len(times)),
    )
    frame.insert(0, "time_s", np.repeat(times, n))
    frame.insert(0, "demand", demand)
    frame.insert(0, "seed", seed)
    frame.insert(0, "scenario", spec.scenario)
    frame[LABEL] = np.concatenate(chosen).astype(np.int64)
    return frame


def imitation_agreement(table: pd.DataFrame, scores: Sequence[float]) -> float:
    """Share of (run, time, intersection) decisions where the top score is the teacher's."""
    frame = table[[*KEYS[:5], LABEL]].assign(score=np.asarray(scores, dtype=np.float64))
    groups = frame.groupby(list(KEYS[:5]), sort=False)
    top = frame.loc[groups["score"].idxmax()]
    return float(top[LABEL].mean())


__all__ = [
    "KEYS",
    "LABEL",
    "DemonstrationSpec",
    "imitation_agreement",
    "record_demonstrations",
]
