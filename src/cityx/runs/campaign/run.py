"""Running a campaign: every cell as a job of the execution engine, then the summary.

A cell runs with :func:`cityx.runs.world.run_controller_world`: its attack
as a hook (or, for a message-path attack, on the secure loop's bus) and the
runtime guard after it. Cells are jobs of :mod:`cityx.worlds.engine`, in
worker threads each driving a SUMO child process (``workers``) or as Ray
tasks (``engine="ray"``), each in ``cells/KEY/`` with its record in
``cell.json``. A killed campaign re-run on the same folder with the same
plan resumes (a different plan is refused): finished cells are skipped,
orphaned simulations killed and unfinished cells redone, each counted once.
A *reused* cell (see :mod:`.plan`: an observation-path attack on a
controller that reads no observation) is not simulated: its ``cell.json``
is its clean cell's record with ``reused`` saying from where and why, and
no guard report (its detection is not assessed).
``campaign.json`` is computed from the cell files, each group's
reproduction plan is written to ``reproduce/``, and one
``campaign.finished`` entry goes to the store's audit log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from cityx.attacks import HookAttack, MessageAttack, world_attack
from cityx.core import CityxError, InputError
from cityx.store import Store
from cityx.targets import Limits
from cityx.worlds import ControllerFailed, WorldCrashed
from cityx.worlds.engine import Engine, HeldFolder, SpawnHook, hold, write_json
from cityx.worlds.traffic import get_scenario, is_controller_plugin

from ..submitted import check_trust, controller_manifest
from ..world import run_controller_world
from .plan import CLEAN, CampaignPlan, Cell, digest
from .records import SCHEMA_VERSION, CampaignResult, CellRecord
from .summary import reproduce_file, summarise

GUARD = "guard:runtime"
CELLS_DIR = "cells"
CELL_FILE = "cell.json"
CAMPAIGN_FILE = "campaign.json"
PLAN_FILE = "plan.json"


def run_cell(
    plan: CampaignPlan,
    cell: Cell,
    folder: Path,
    *,
    on_spawn: SpawnHook | None = None,
    limits: Limits | None = None,
    trusted_by: Mapping[str, str] | None = None,
) -> CellRecord:
    """Run one cell in ``folder`` and return its record (a failed run is a record too).

    ``limits`` bound a submitted controller's model worker (a trial's ``--timeout`` and
    ``--memory-mb``); None keeps the sandbox's step limits. ``trusted_by`` are the user's
    opt-ins (``--trust-code``, ``--trust-pickle``) that a submission running vendor code needs.
    """
    started = time.perf_counter()
    hooks: list[tuple[str, Mapping[str, Any]]] = []
    message_attack: dict[str, Any] | None = None
    attack = world_attack(cell.attack) if cell.attack != CLEAN else None
    if isinstance(attack, HookAttack):
        hooks.append((f"attack:{cell.attack}", plan.attack_params(cell.attack, cell.intensity)))
    elif isinstance(attack, MessageAttack):
        message_attack = {
            "attack": cell.attack,
            "seed": cell.seed,
            **plan.attack_params(cell.attack, cell.intensity),
        }
    if plan.guard:
        hooks.append((GUARD, {"attack_start_s": plan.attack_start_s}))
    status, error = "ok", None
    kpis: Mapping[str, Any] = {}
    reports: tuple[Mapping[str, Any], ...] = ()
    complete = False
    try:
        result = run_controller_world(
            cell.scenario,
            plan.controller,
            seconds=plan.seconds,
            seed=cell.seed,
            demand=plan.demand,
            out=folder,
            hooks=hooks,
            bus=plan.bus,
            message_attack=message_attack,
            timeout_s=plan.timeout_s,
            on_spawn=on_spawn,
            limits=None if is_controller_plugin(plan.controller) else limits,
            trusted_by=trusted_by,
        )
        kpis, reports, complete = result.kpis.overall, result.hooks, result.complete
    except (WorldCrashed, ControllerFailed) as exc:
        status, error = "failed", exc.message
        if exc.partial is not None:
            kpis, reports = exc.partial.kpis.overall, exc.partial.hooks
    except CityxError as exc:
        status, error = "failed", exc.message
    interop = folder / "interop.json"
    record = CellRecord(
        cell,
        status,
        error,
        kpis=dict(kpis),
        hooks=tuple(dict(h) for h in reports),
        complete=complete,
        interop=json.loads(interop.read_text()) if interop.is_file() else None,
        out=str(folder),
        wall_s=round(time.perf_counter() - started, 3),
    )
    return record


def _cell_job(
    plan: CampaignPlan,
    limits: Limits | None,
    trusted_by: Mapping[str, str] | None,
    cell: Cell,
    folder: Path,
    on_spawn: SpawnHook | None,
) -> dict[str, Any]:
    """:func:`run_cell` as the engine's job (also what a Ray task runs)."""
    record = run_cell(plan, cell, folder, on_spawn=on_spawn, limits=limits, trusted_by=trusted_by)
    return record.to_json()


def run_campaign(
    plan: CampaignPlan,
    out: Path,
    *,
    workers: int = 2,
    engine: str = "local",
    address: str | None = None,
    store: str | None = None,
    record: bool = True,
    limits: Limits | None = None,
    trusted_by: Mapping[str, str] | None = None,
) -> CampaignResult:
    """Run every unfinished cell of ``plan`` under ``out``, then summarise all of them.

    ``record`` appends a ``campaign.finished`` entry to the store's audit log
    (``store`` URL, default the user's store). ``limits`` bound a submitted
    controller's model worker in every cell (see :func:`run_cell`). ``trusted_by`` are the
    user's opt-ins a submission running vendor code needs (:func:`..submitted.opt_ins`);
    a missing one is refused here, before any cell runs, and the audit entry names them.
    """
    runner = Engine(kind=engine, workers=workers, address=address)
    for scenario in plan.scenarios:
        get_scenario(scenario)  # a bad name fails before any cell runs
    submitted = Path(plan.controller)
    if not is_controller_plugin(plan.controller) and submitted.is_dir():
        # Vendor code without its opt-in: one clear refusal, not a failed record per cell.
        check_trust(submitted, controller_manifest(submitted), trusted_by or {})
    started = time.perf_counter()
    with hold(out) as folder:
        out = folder.root
        _check_plan(plan, folder)
        reasons = {c: plan.reuse_reason(c) for c in plan.cells()}
        cells = {f"{CELLS_DIR}/{c.key}": c for c, why in reasons.items() if why is None}
        batch = runner.run(
            folder,
            cells,
            partial(_cell_job, plan, limits, dict(trusted_by or {})),
            result_file=CELL_FILE,
            failed=lambda cell, reason: CellRecord.failure(
                cell, reason, out=out / CELLS_DIR / cell.key
            ).to_json(),
        )
        records = [CellRecord.from_json(r) for r in batch.records]
        reused = _reused(out, records, {c: why for c, why in reasons.items() if why is not None})
        result = summarise(
            plan,
            records + reused,
            out=out,
            ran=batch.ran,
            skipped=batch.skipped,
            reused=len(reused),
        )
        result = replace(result, wall_s=time.perf_counter() - started)
        obj = result.to_json()
        for group in result.groups:
            path = reproduce_file(out, group.scenario, group.attack, group.intensity)
            path.parent.mkdir(parents=True, exist_ok=True)
            one = plan.group(group.scenario, group.attack, group.intensity)
            path.write_text(one.with_absolute_paths().to_toml())
        write_json(out / CAMPAIGN_FILE, obj)
    if record:
        with Store.open(store) as db:
            db.append_audit(
                actor="cityx.redteam",
                action="campaign.finished",
                subject=str(out),
                payload={
                    "plan_sha256": plan.sha256(),
                    "campaign_sha256": digest({k: v for k, v in obj.items() if k != "wall_s"}),
                    "controller": plan.controller,
                    "cells": len(cells) + len(reused),
                    "reused": len(reused),
                    "failed": len(result.failed),
                    "findings": [f.id for f in result.findings],
                    "trusted_by": dict(trusted_by or {}),
                },
            )
    return result


def _reused(out: Path, records: list[CellRecord], reasons: Mapping[Cell, str]) -> list[CellRecord]:
    """Each reusable cell's record: its clean cell's, marked, and written to its folder."""
    clean = {(r.cell.scenario, r.cell.seed): r for r in records if r.cell.attack == CLEAN}
    done = []
    for cell, why in reasons.items():
        base = clean[(cell.scenario, cell.seed)]
        folder = out / CELLS_DIR / cell.key
        record = replace(
            base,
            cell=cell,
            # The guard's report is the clean run's, not one on the attacked observations.
            hooks=tuple(h for h in base.hooks if h.get("kind") != "guard"),
            out=str(folder),
            wall_s=0.0,
            reused={"from": base.cell.key, "reason": why},
        )
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CELL_FILE, record.to_json())
        done.append(record)
    return done


def _check_plan(plan: CampaignPlan, folder: HeldFolder) -> None:
    """Keep the plan in the folder; refuse a folder that holds another plan's cells."""
    path = folder.root / PLAN_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("sha256") != plan.sha256():
            raise InputError(
                "this folder holds a campaign with a different plan",
                where=str(folder.root),
                hint="re-run with the same plan to resume, or choose another --out",
            )
        return
    write_json(path, {"schema_version": SCHEMA_VERSION, "sha256": plan.sha256(), **plan.to_json()})


__all__ = ["CAMPAIGN_FILE", "CELLS_DIR", "CELL_FILE", "PLAN_FILE", "run_campaign", "run_cell"]
