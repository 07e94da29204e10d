"""The trial's world runner: a trial's cells in the SUMO sandbox, on the execution engine.

:class:`SandboxRunner` is the trial's :class:`~cityx.core.WorldRunner`. A
*cell* (:class:`~cityx.core.WorldCell`) is one world run of a controller on
a scenario, seed and demand level; the controller ``"submission"`` is the
trial's submission, any other is a controller plugin. Each cell is one job
of :mod:`cityx.worlds.engine`: a world run (:func:`.world.run_controller_world`)
in its own folder ``SCENARIO/CONTROLLER-sSEED-dDEMAND`` under the trial's
world folder, whose record is the cell's outcome (``outcome.json``; its trip
table stays in the run's own file). A run that crashed, hung or whose
controller failed becomes an outcome with its error. A submission's
decision latency per step (:mod:`.submitted`) joins its outcome's KPIs as
``decision_p50_ms``, ``decision_p95_ms`` and ``decision_max_ms``, with the
run's wall time as ``wall_s``. A trial runs its cells afresh every time: a
folder left by an earlier trial is cleared, not resumed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from cityx.core import WorldCell, WorldOutcome
from cityx.targets import Limits
from cityx.worlds import WorldCrashed
from cityx.worlds.engine import Engine, SpawnHook, hold
from cityx.worlds.traffic import get_scenario, load_trips

from .submitted import read_latency
from .world import run_controller_world

SUBMISSION = "submission"
OUTCOME_FILE = "outcome.json"


class SandboxRunner:
    """Runs a trial's cells, ``workers`` at a time, under ``root``.

    The cell controller ``"submission"`` is the submission in ``submission``,
    its model worker under ``limits`` (the trial's ``--timeout`` is then the
    step's timeout). A run that does not finish within ``timeout_s`` is killed
    and reported.
    """

    def __init__(
        self,
        submission: Path,
        root: Path,
        *,
        workers: int = 2,
        timeout_s: float | None = 1800.0,
        plugins_allow: Sequence[str] | None = None,
        limits: Limits | None = None,
        trusted_by: Mapping[str, str] | None = None,
    ) -> None:
        self.submission = submission
        self.root = root
        self.workers = workers
        self.timeout_s = timeout_s
        self.plugins_allow = None if plugins_allow is None else tuple(plugins_allow)
        self.limits = limits
        # The trial's opt-ins (--trust-code, --trust-pickle) and who gave them: the world's
        # child process requires them again before it opens the submission's model.
        self.trusted_by = dict(trusted_by or {})

    def run(self, cells: Sequence[WorldCell]) -> list[WorldOutcome]:
        for scenario in {c.scenario for c in cells}:
            get_scenario(scenario)  # a bad name fails before any run starts
        jobs = {cell_key(c): c for c in cells}
        work = partial(
            _run_cell,
            str(self.submission),
            self.timeout_s,
            self.plugins_allow,
            self.limits,
            self.trusted_by,
        )
        with hold(self.root) as folder:
            batch = Engine(workers=max(1, self.workers)).run(
                folder, jobs, work, result_file=OUTCOME_FILE, resume=False
            )
        outcomes = {key: _outcome(record) for key, record in zip(jobs, batch.records, strict=True)}
        return [outcomes[cell_key(c)] for c in cells]


def cell_key(cell: WorldCell) -> str:
    """The cell's folder under the runner's root: ``SCENARIO/CONTROLLER-sSEED-dDEMAND``."""
    name = f"{cell.controller}-s{cell.seed}-d{cell.demand:g}"
    return "/".join(re.sub(r"[^A-Za-z0-9.-]+", "_", part) for part in (cell.scenario, name))


def _run_cell(
    submission: str,
    timeout_s: float | None,
    plugins_allow: tuple[str, ...] | None,
    limits: Limits | None,
    trusted_by: Mapping[str, str],
    cell: WorldCell,
    folder: Path,
    on_spawn: SpawnHook | None,
) -> dict[str, Any]:
    """One cell as the engine's job: its outcome's JSON."""
    mine = cell.controller == SUBMISSION
    started = time.perf_counter()
    try:
        result = run_controller_world(
            cell.scenario,
            submission if mine else cell.controller,
            seconds=cell.seconds,
            seed=cell.seed,
            demand=cell.demand,
            out=folder,
            timeout_s=timeout_s,
            on_spawn=on_spawn,
            plugins_allow=plugins_allow,
            limits=limits if mine else None,
            trusted_by=trusted_by if mine else None,
        )
    except WorldCrashed as exc:
        partial_kpis = exc.partial.kpis.overall if exc.partial is not None else {}
        failed = WorldOutcome(
            cell,
            kpis={**partial_kpis, **_run_measures(folder, started)},
            complete=False,
            error=exc.message,
            out=str(folder),
        )
        return failed.to_json()
    report = result.to_json()
    outcome = WorldOutcome(
        cell,
        kpis={**result.kpis.overall, **_run_measures(folder, started)},
        by_group=report["kpis"]["by_group"],
        safety=report["safety"],
        complete=result.complete,
        out=str(folder),
    )
    return outcome.to_json()


def _run_measures(folder: Path, started: float) -> dict[str, Any]:
    """The run's wall time and, for a submission, its decision latency per step."""
    measures: dict[str, Any] = {"wall_s": round(time.perf_counter() - started, 3)}
    latency = read_latency(folder)
    if latency is not None:
        for name in ("p50_ms", "p95_ms", "max_ms"):
            measures[f"decision_{name}"] = latency.get(name)
    return measures


def _outcome(record: Mapping[str, Any]) -> WorldOutcome:
    out = record.get("out")
    return WorldOutcome.from_json(record, trips=load_trips(Path(out)) if out else None)


__all__ = ["OUTCOME_FILE", "SUBMISSION", "SandboxRunner", "cell_key"]
