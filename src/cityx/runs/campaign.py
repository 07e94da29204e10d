"""Red-team campaigns: a grid of world attacks on a controller, run in parallel, resumable.

A *campaign plan* is a grid: scenario x attack x intensity x seed, against
one *controller* (a baseline's name or a controller submission folder).
Each point of the grid is a *cell*: one simulation with the attack's hook
(or, for a message-path attack, a man in the middle on the secure loop's
bus) and a runtime guard after it. Every (scenario, seed) also gets one
*clean* cell, the same run without the attack, so each attacked cell is
*paired* with the unattacked run of the same seed: its *delta* is the
attacked minus the clean value of each overall KPI.

An attack *succeeds* on a cell when it worsens the plan's KPI (mean time
loss by default) by at least ``success_pct`` percent. Per (scenario,
attack, intensity) the paired deltas get 95 % t intervals over seeds
(:func:`cityx.assess.sandbox.paired`), with the success rate, the
attacker's *cost* (sensors controlled, magnitude in physical units), and
whether the runtime guard or the interop verification *noticed*: more
guard flags after the attack began, or more rejected messages, than on
the clean run. A group whose mean change passes the threshold becomes a
*finding* with a severity from the policy thresholds, the attack's ATLAS
tags and the command that reproduces it.

Cells run in worker threads, each driving a SUMO child process
(``--workers``), or as Ray tasks (``engine="ray"``). Each cell's record is
written atomically to ``cells/KEY/cell.json`` when it ends, so a killed
campaign re-run on the same folder skips finished cells, kills the
orphaned simulations it recorded, redoes the unfinished ones and counts
each cell once. ``campaign.json`` is computed from the cell files, and one
``campaign.finished`` entry goes to the store's audit log.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cityx.assess.sandbox import paired
from cityx.attacks import (
    AttackTarget,
    HookAttack,
    MessageAttack,
    world_attack,
    world_attack_ids,
)
from cityx.core import (
    Check,
    CheckContext,
    CheckResult,
    CityxError,
    Evidence,
    Finding,
    InputError,
    Metric,
    NistFunction,
    PluginKind,
    PluginMeta,
    Principle,
    RunError,
    Severity,
    Tags,
    status_from,
)
from cityx.core.seeding import check_seed
from cityx.worlds.traffic import is_controller_plugin

SCHEMA_VERSION = 1
CLEAN = "none"
GUARD = "guard:runtime"
# The overall KPIs whose paired differences a group summarises.
SUMMARISED = (
    "mean_waiting_s",
    "mean_time_loss_s",
    "p95_waiting_s",
    "arrived",
    "backlog",
    "teleports",
    "collisions",
    "bus_mean_delay_s",
    "emergency_mean_delay_s",
)
CELL_FILE = "cell.json"
CAMPAIGN_FILE = "campaign.json"
PLAN_FILE = "plan.json"
_PID_FILE = "child.pid"
_WORKER_MODULE = "cityx.worlds.traffic._worker"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When an attack succeeded, and how bad a finding is (percent worse on ``kpi``)."""

    kpi: str = "mean_time_loss_s"
    success_pct: float = 10.0
    high_pct: float = 25.0
    critical_pct: float = 50.0

    def __post_init__(self) -> None:
        if not 0 < self.success_pct <= self.high_pct <= self.critical_pct:
            raise InputError(
                "thresholds must satisfy 0 < success_pct <= high_pct <= critical_pct",
                where="thresholds",
            )

    def severity(self, change_pct: float) -> Severity:
        if change_pct >= self.critical_pct:
            return Severity.CRITICAL
        if change_pct >= self.high_pct:
            return Severity.HIGH
        return Severity.MEDIUM


@dataclass(frozen=True, slots=True)
class Cell:
    """One simulation of a campaign; ``attack`` is ``"none"`` for a clean run."""

    scenario: str
    attack: str
    intensity: float
    seed: int

    @property
    def key(self) -> str:
        scenario = re.sub(r"[^A-Za-z0-9.-]+", "_", Path(self.scenario).stem or self.scenario)
        digest = hashlib.sha256(self.scenario.encode()).hexdigest()[:6]
        return f"{scenario}-{digest}/{self.attack}/i{self.intensity:g}/s{self.seed}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """The grid, the controller and how each run is made.

    ``start_s`` (default: a quarter of the run) leaves a clean lead-in
    before the attack, which the guard's false alarms are read against.
    ``params`` holds further parameters per attack id; ``bus`` runs a
    submitted controller through the secure loop (message attacks need it:
    ``memory`` is then the default).
    """

    controller: str
    scenarios: tuple[str, ...]
    attacks: tuple[str, ...]
    intensities: tuple[float, ...] = (0.5,)
    seeds: tuple[int, ...] = (1, 2)
    seconds: int = 300
    demand: float = 1.0
    share: float | None = None
    start_s: float | None = None
    bus: str | None = None
    guard: bool = True
    params: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        for name in ("scenarios", "attacks", "intensities", "seeds"):
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence) or not value:
                raise InputError(f"{name} must be a non-empty list", where=name)
            object.__setattr__(self, name, tuple(dict.fromkeys(value)))
        for s in self.seeds:
            try:
                check_seed(s)
            except ValueError as exc:
                raise InputError(str(exc), where="seeds") from None
        if self.seconds <= 0:
            raise InputError(f"seconds must be positive, got {self.seconds}", where="seconds")
        known = world_attack_ids()
        for attack in self.attacks:
            if attack not in known:
                raise InputError(
                    f"unknown world attack {attack!r}",
                    where="attacks",
                    hint=f"known: {', '.join(sorted(known))} (cityx attacks list)",
                )
            for x in self.intensities:
                world_attack(attack).configure(self.attack_params(attack, x))
        messages = [a for a in self.attacks if isinstance(world_attack(a), MessageAttack)]
        if messages and is_controller_plugin(self.controller):
            raise InputError(
                f"{', '.join(messages)} attack(s) the secure loop, which only a submitted "
                "controller runs behind",
                where="attacks",
                hint="attack a controller submission folder, or use sensor attacks",
            )
        if messages and self.bus is None:
            object.__setattr__(self, "bus", "memory")
        if not is_controller_plugin(self.controller) and not Path(self.controller).is_dir():
            raise InputError(
                f"unknown controller {self.controller!r}",
                hint="a controller plugin (cityx plugins) or a controller submission folder",
            )

    @property
    def attack_start_s(self) -> float:
        return float(self.start_s if self.start_s is not None else self.seconds // 4)

    def attack_params(self, attack: str, intensity: float) -> dict[str, Any]:
        values: dict[str, Any] = {**self.params.get(attack, {}), "intensity": intensity}
        values["start_s"] = self.attack_start_s
        if self.share is not None:
            values["share"] = self.share
        return values

    def cells(self) -> list[Cell]:
        """Clean cells first (one per scenario and seed), then the attacked grid."""
        clean = [Cell(s, CLEAN, 0.0, seed) for s in self.scenarios for seed in self.seeds]
        attacked = [
            Cell(s, a, float(x), seed)
            for s in self.scenarios
            for a in self.attacks
            for x in self.intensities
            for seed in self.seeds
        ]
        return clean + attacked

    def to_json(self) -> dict[str, Any]:
        obj = asdict(self)
        obj["params"] = {k: dict(v) for k, v in self.params.items()}
        return obj

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CampaignPlan:
        values = dict(obj)
        values["thresholds"] = Thresholds(**values.get("thresholds", {}))
        for name in ("scenarios", "attacks", "intensities", "seeds"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    @classmethod
    def from_toml(cls, path: Path, **overrides: Any) -> CampaignPlan:
        """A plan from a TOML file (keys as the fields; ``seeds`` a list or a count)."""
        try:
            raw = tomllib.loads(path.read_text())
        except OSError as exc:
            raise InputError(f"cannot read the plan: {exc.strerror}", where=str(path)) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"not valid TOML: {exc}", where=str(path)) from None
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(raw.get("seeds"), int):
            raw["seeds"] = list(range(1, raw["seeds"] + 1))
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InputError(
                f"unknown plan key(s) {', '.join(unknown)}",
                where=str(path),
                hint=f"known: {', '.join(sorted(known))}",
            )
        try:
            return cls.from_json(raw)
        except TypeError as exc:
            raise InputError(f"bad plan: {exc}", where=str(path)) from None

    def sha256(self) -> str:
        return _sha256(self.to_json())


# -- one cell -------------------------------------------------------------------------------


def run_cell(
    plan: CampaignPlan, cell: Cell, folder: Path, *, on_spawn: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run one cell in ``folder`` and return its record (a failed run is a record too)."""
    from cityx.worlds import ControllerFailed, WorldCrashed

    from .world import run_controller_world

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
    record: dict[str, Any] = {**cell.to_json(), "key": cell.key, "status": "ok", "error": None}
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
        )
        obj = result.to_json()
        record.update(kpis=obj["kpis"]["overall"], hooks=obj["hooks"], complete=obj["complete"])
    except (WorldCrashed, ControllerFailed) as exc:
        partial = exc.partial.to_json() if exc.partial is not None else None
        record.update(
            status="failed",
            error=exc.message,
            kpis=partial["kpis"]["overall"] if partial else {},
            hooks=partial["hooks"] if partial else [],
            complete=False,
        )
    except CityxError as exc:
        record.update(status="failed", error=exc.message, kpis={}, hooks=[], complete=False)
    interop = folder / "interop.json"
    record["interop"] = json.loads(interop.read_text()) if interop.is_file() else None
    record["wall_s"] = round(time.perf_counter() - started, 3)
    record["out"] = str(folder)
    return record


def _run_cell_payload(plan: dict[str, Any], cell: dict[str, Any], folder: str) -> dict[str, Any]:
    """:func:`run_cell` with JSON in and out: what a Ray task runs."""
    return run_cell(CampaignPlan.from_json(plan), Cell(**cell), Path(folder))


def _write_atomic(path: Path, obj: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, allow_nan=False))
    tmp.replace(path)


# -- the campaign ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignResult:
    """Cell records, per-group impact, findings, and where they were written."""

    plan: CampaignPlan
    cells: tuple[Mapping[str, Any], ...]  # attacked cells with delta, success and detection
    clean: tuple[Mapping[str, Any], ...]
    groups: tuple[Mapping[str, Any], ...]
    findings: tuple[Finding, ...]
    failed: tuple[Mapping[str, Any], ...]
    ran: int  # cells run by this call (the others were already done)
    skipped: int
    out: Path
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "plan": self.plan.to_json(),
            "cells": [dict(c) for c in self.cells],
            "clean": [dict(c) for c in self.clean],
            "groups": [dict(g) for g in self.groups],
            "findings": [f.to_json() for f in self.findings],
            "failed": [dict(f) for f in self.failed],
            "ran": self.ran,
            "skipped": self.skipped,
            "out": str(self.out),
            "wall_s": round(self.wall_s, 3),
        }


def run_campaign(
    plan: CampaignPlan,
    out: Path,
    *,
    workers: int = 2,
    engine: str = "local",
    address: str | None = None,
    store: str | None = None,
    record: bool = True,
) -> CampaignResult:
    """Run every unfinished cell of ``plan`` under ``out``, then summarise all of them.

    ``record`` appends a ``campaign.finished`` entry to the store's audit log
    (``store`` URL, default the user's store).
    """
    from cityx.worlds.traffic import get_scenario

    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}", where="workers")
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r}", where="engine", hint="local or ray")
    for scenario in plan.scenarios:
        get_scenario(scenario)  # a bad name fails before any cell runs
    started = time.perf_counter()
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        _check_plan(plan, out)
        cells = plan.cells()
        todo = [c for c in cells if not (out / "cells" / c.key / CELL_FILE).is_file()]
        for cell in todo:
            _reset(out / "cells" / cell.key)
        if engine == "ray":
            _run_ray(plan, todo, out, address)
        else:
            _run_local(plan, todo, out, workers)
        records = [_read(out / "cells" / c.key / CELL_FILE) for c in cells]
        result = summarise(plan, records, out=out, ran=len(todo), skipped=len(cells) - len(todo))
        result = CampaignResult(**{**_fields(result), "wall_s": time.perf_counter() - started})
        obj = result.to_json()
        _write_atomic(out / CAMPAIGN_FILE, obj)
    if record:
        from cityx.store import Store

        with Store.open(store) as db:
            db.append_audit(
                actor="cityx.redteam",
                action="campaign.finished",
                subject=str(out),
                payload={
                    "plan_sha256": plan.sha256(),
                    "campaign_sha256": _sha256({k: v for k, v in obj.items() if k != "wall_s"}),
                    "controller": plan.controller,
                    "cells": len(cells),
                    "failed": len(result.failed),
                    "findings": [f.id for f in result.findings],
                },
            )
    return result


def _fields(result: CampaignResult) -> dict[str, Any]:
    return {name: getattr(result, name) for name in CampaignResult.__dataclass_fields__}


def _run_local(plan: CampaignPlan, todo: Sequence[Cell], out: Path, workers: int) -> None:
    def one(cell: Cell) -> None:
        folder = out / "cells" / cell.key
        folder.mkdir(parents=True, exist_ok=True)
        pid_file = folder / _PID_FILE

        def spawned(pid: int) -> None:
            pid_file.write_text(str(pid))

        record = run_cell(plan, cell, folder, on_spawn=spawned)
        _write_atomic(folder / CELL_FILE, record)
        pid_file.unlink(missing_ok=True)

    with ThreadPoolExecutor(workers) as pool:
        for future in as_completed([pool.submit(one, c) for c in todo]):
            future.result()


def _run_ray(plan: CampaignPlan, todo: Sequence[Cell], out: Path, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise InputError(
            "the Ray engine needs Ray", hint="install the extra: pip install 'cityx[ray]'"
        ) from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    task = ray.remote(num_cpus=1, max_retries=0)(_run_cell_payload)
    plan_json = plan.to_json()
    pending = {}
    for cell in todo:
        folder = out / "cells" / cell.key
        folder.mkdir(parents=True, exist_ok=True)
        pending[task.remote(plan_json, cell.to_json(), str(folder))] = cell
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            cell = pending.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as exc:  # a Ray worker died or raised: a failed cell, recorded
                record = {
                    **cell.to_json(),
                    "key": cell.key,
                    "status": "failed",
                    "error": f"ray task failed: {' '.join(str(exc).split())[:300]}",
                    "kpis": {},
                    "hooks": [],
                    "complete": False,
                    "interop": None,
                    "out": str(out / "cells" / cell.key),
                }
            _write_atomic(out / "cells" / cell.key / CELL_FILE, record)


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One campaign at a time per folder; the OS drops the lock when its holder dies."""
    with open(out / ".campaign.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError("another campaign is running in this folder", where=str(out)) from None
        yield


def _check_plan(plan: CampaignPlan, out: Path) -> None:
    path = out / PLAN_FILE
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("sha256") != plan.sha256():
            raise InputError(
                "this folder holds a campaign with a different plan",
                where=str(out),
                hint="re-run with the same plan to resume, or choose another --out",
            )
        return
    _write_atomic(
        path, {"schema_version": SCHEMA_VERSION, "sha256": plan.sha256(), **plan.to_json()}
    )


def _reset(folder: Path) -> None:
    """Clear an unfinished cell's folder, killing a simulation a killed campaign left running."""
    pid_file = folder / _PID_FILE
    if pid_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            # Only our own orphan: the world worker of this very cell folder.
            if _WORKER_MODULE.encode() in cmdline and str(folder).encode() in cmdline:
                os.killpg(pid, signal.SIGKILL)
                for _ in range(50):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.1)
    if folder.exists():
        shutil.rmtree(folder)


def _read(path: Path) -> dict[str, Any]:
    try:
        obj: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(
            f"a cell's result is missing or unreadable: {exc}", where=str(path)
        ) from None
    return obj


def _sha256(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# -- impact ---------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _delta(attacked: Mapping[str, Any], clean: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in clean:
        a, c = _number(attacked.get(key)), _number(clean.get(key))
        out[key] = round(a - c, 6) if a is not None and c is not None else None
    return out


def _hook(record: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    return next((h for h in record.get("hooks", []) if h.get("kind") == kind), {})


def _rejections(record: Mapping[str, Any]) -> int:
    interop = record.get("interop") or {}
    return sum(
        int(n)
        for part in ("observations", "commands")
        for reason, n in (interop.get(part) or {}).items()
        if reason.startswith("rejected:")
    )


def detection(attacked: Mapping[str, Any], clean: Mapping[str, Any]) -> dict[str, Any]:
    """Whether the guard or the interop verification noticed, against the clean run."""
    guard_a, guard_c = _hook(attacked, "guard"), _hook(clean, "guard")
    flags = int(guard_a.get("flagged_steps_after", 0))
    false_alarms = int(guard_c.get("flagged_steps_after", 0))
    rejected, rejected_clean = _rejections(attacked), _rejections(clean)
    guard = bool(guard_a) and flags > false_alarms
    interop = rejected > rejected_clean
    start = guard_a.get("attack_start_s")
    first = guard_a.get("first_flag_after_s")
    return {
        "guard": guard,
        "interop": interop,
        "any": guard or interop,
        "guard_flagged_steps": flags,
        "guard_false_alarm_steps": false_alarms,
        "guard_delay_s": first - start
        if guard and first is not None and start is not None
        else None,
        "guard_checks": dict(guard_a.get("checks", {})),
        "rejected_messages": rejected,
    }


def change_pct(delta: float | None, clean: float | None) -> float | None:
    """``delta`` as a percent of the clean value (None when the clean value is 0 or unknown)."""
    if delta is None or clean is None or clean == 0:
        return None
    return 100.0 * delta / abs(clean)


def summarise(
    plan: CampaignPlan,
    records: Sequence[Mapping[str, Any]],
    *,
    out: Path,
    ran: int = 0,
    skipped: int = 0,
) -> CampaignResult:
    """Pair each attacked cell with its clean run; group by attack and intensity; findings."""
    kpi = plan.thresholds.kpi
    clean = {(r["scenario"], r["seed"]): r for r in records if r["attack"] == CLEAN}
    failed = [
        {k: r[k] for k in ("key", "scenario", "attack", "intensity", "seed", "error")}
        for r in records
        if r["status"] != "ok"
    ]
    cells: list[dict[str, Any]] = []
    for r in records:
        if r["attack"] == CLEAN:
            continue
        base = clean.get((r["scenario"], r["seed"]))
        usable = r["status"] == "ok" and base is not None and base["status"] == "ok"
        delta = _delta(r["kpis"], base["kpis"]) if usable and base is not None else {}
        pct = (
            change_pct(delta.get(kpi), _number(base["kpis"].get(kpi))) if usable and base else None
        )
        attack = _hook(r, "attack") or (r.get("interop") or {}).get("attack") or {}
        noticed = detection(r, base) if usable and base is not None else None
        cells.append(
            {
                "key": r["key"],
                "scenario": r["scenario"],
                "attack": r["attack"],
                "intensity": r["intensity"],
                "seed": r["seed"],
                "status": r["status"] if usable else "failed",
                "kpis": r["kpis"],
                "delta": delta,
                "change_pct": {kpi: None if pct is None else round(pct, 3)},
                "success": pct is not None and pct >= plan.thresholds.success_pct,
                "detected": bool(noticed and noticed["any"]),
                "detection": noticed,
                "cost": attack.get("cost"),
            }
        )
    groups: list[dict[str, Any]] = []
    findings: list[Finding] = []
    keys = dict.fromkeys((c["scenario"], c["attack"], c["intensity"]) for c in cells)
    for scenario, attack, intensity in keys:
        members = [
            c
            for c in cells
            if (c["scenario"], c["attack"], c["intensity"]) == (scenario, attack, intensity)
            and c["status"] == "ok"
        ]
        group = _group(plan, scenario, attack, intensity, members, clean)
        groups.append(group)
        finding = _finding(plan, group)
        if finding is not None:
            findings.append(finding)
    return CampaignResult(
        plan=plan,
        cells=tuple(cells),
        clean=tuple(
            {k: r[k] for k in ("key", "scenario", "seed", "status", "kpis")}
            for r in records
            if r["attack"] == CLEAN
        ),
        groups=tuple(groups),
        findings=tuple(findings),
        failed=tuple(failed),
        ran=ran,
        skipped=skipped,
        out=out,
    )


def _group(
    plan: CampaignPlan,
    scenario: str,
    attack: str,
    intensity: float,
    members: Sequence[Mapping[str, Any]],
    clean: Mapping[tuple[str, int], Mapping[str, Any]],
) -> dict[str, Any]:
    kpi = plan.thresholds.kpi
    deltas = {}
    for name in SUMMARISED:
        values = [c["delta"].get(name) for c in members]
        metric = paired([v for v in values if v is not None])
        deltas[name] = metric.to_json() | {"n": sum(v is not None for v in values)}
    pcts = [c["change_pct"][kpi] for c in members if c["change_pct"][kpi] is not None]
    clean_kpi = [_number(clean[(c["scenario"], c["seed"])]["kpis"].get(kpi)) for c in members]
    costs = [c["cost"] for c in members if c.get("cost")]
    n = len(members)
    return {
        "scenario": scenario,
        "attack": attack,
        "intensity": intensity,
        "seeds": [c["seed"] for c in members],
        "n": n,
        "delta": deltas,
        "change_pct": paired(pcts).to_json() | {"kpi": kpi},
        "clean_mean": (
            sum(v for v in clean_kpi if v is not None)
            / max(1, sum(v is not None for v in clean_kpi))
        ),
        "success_rate": sum(c["success"] for c in members) / n if n else None,
        "detection_rate": {
            src: sum(bool(c["detection"] and c["detection"][src]) for c in members) / n
            if n
            else None
            for src in ("guard", "interop", "any")
        },
        "cost": {
            "sensors": max((int(c["sensors"]) for c in costs), default=0),
            "magnitude": sum(float(c["magnitude"]) for c in costs) / len(costs) if costs else None,
            "unit": costs[0]["unit"] if costs else None,
        },
    }


def reproduce_command(plan: CampaignPlan, scenario: str, attack: str, intensity: float) -> str:
    """The ``cityx redteam run`` command that re-runs one group of a campaign."""
    args = [
        "cityx",
        "redteam",
        "run",
        plan.controller,
        "--scenario",
        scenario,
        "--attacks",
        attack,
        "--intensity",
        f"{intensity:g}",
        "--seeds",
        str(len(plan.seeds))
        if plan.seeds == tuple(range(1, len(plan.seeds) + 1))
        else ",".join(str(s) for s in plan.seeds),
        "--seconds",
        str(plan.seconds),
    ]
    if plan.demand != 1.0:
        args += ["--demand", f"{plan.demand:g}"]
    if plan.share is not None:
        args += ["--share", f"{plan.share:g}"]
    if plan.start_s is not None:
        args += ["--start", f"{plan.start_s:g}"]
    if plan.bus is not None:
        args += ["--bus", plan.bus]
    return " ".join(shlex.quote(a) for a in args)


def _finding(plan: CampaignPlan, group: Mapping[str, Any]) -> Finding | None:
    thresholds = plan.thresholds
    change = group["change_pct"]["value"]
    if change is None or change < thresholds.success_pct:
        return None
    spec = world_attack(group["attack"]).spec
    severity = thresholds.severity(change)
    detected = group["detection_rate"]
    noticed = (
        "the runtime guard noticed it"
        if detected["guard"]
        else "interop verification noticed it"
        if detected["interop"]
        else "neither the guard nor interop verification noticed it"
    )
    delta = group["delta"]
    kpi = thresholds.kpi
    principle = Principle.SECURITY if spec.target is AttackTarget.MESSAGE else spec.principle
    return Finding(
        id=f"redteam.campaign/{group['scenario']}/{group['attack']}/i{group['intensity']:g}",
        check="redteam.campaign",
        title=f"{spec.id} at intensity {group['intensity']:g} worsens {kpi} by {change:.0f} % "
        f"on {group['scenario']}",
        severity=severity,
        severity_reason=f"mean {kpi} change {change:+.1f} % over {group['n']} seed(s) "
        f"(thresholds: medium {thresholds.success_pct:g} %, high {thresholds.high_pct:g} %, "
        f"critical {thresholds.critical_pct:g} %); {noticed}",
        tags=Tags(principle, NistFunction.MEASURE, spec.atlas, ("Art. 15",)),
        description=f"{spec.goal}. Attacker cost: {group['cost']['sensors']} sensor(s), "
        f"{group['cost']['magnitude']} {group['cost']['unit']}.",
        evidence=Evidence(
            metrics={
                f"{kpi}_change_pct": change,
                f"{kpi}_change_pct_ci_low": group["change_pct"]["ci_low"],
                f"{kpi}_change_pct_ci_high": group["change_pct"]["ci_high"],
                **{f"{k}_delta": delta[k]["value"] for k in SUMMARISED},
                "success_rate": group["success_rate"],
                "guard_detection_rate": detected["guard"],
                "interop_detection_rate": detected["interop"],
                "sensors_controlled": group["cost"]["sensors"],
            },
            seed=group["seeds"][0] if group["seeds"] else None,
            reproduce=reproduce_command(
                plan, group["scenario"], group["attack"], group["intensity"]
            ),
        ),
    )


# -- the trial check ------------------------------------------------------------------------

CHECK_DEFAULTS: Mapping[str, Any] = {
    "scenario": "cologne1",
    "attacks": [
        "world.phantom-queue",
        "world.hidden-vehicles",
        "world.cv-spoof",
        "world.stale",
        "world.blackout",
    ],
    "intensities": [1.0],
    "seeds": [1, 2],
    "seconds": 300,
    "demand": 1.0,
    "workers": 2,
    "success_pct": 10.0,
    "high_pct": 25.0,
    "critical_pct": 50.0,
}


class RedteamCampaign(Check):
    """A small campaign of world attacks on a submitted controller, inside a trial.

    Its folder is ``redteam/`` beside the trial's ``world/`` folder (a
    temporary folder when the trial gives none). Metrics: the worst mean
    change of the KPI over the attack groups (``worst_change_pct``), the
    share of groups where the attack succeeded (``success_rate``), the
    share of attacked cells the guard noticed (``guard_detection_rate``)
    and ``failed_cells``; each successful group is a finding.
    """

    meta: ClassVar[PluginMeta] = PluginMeta(
        id="redteam.campaign",
        kind=PluginKind.CHECK,
        version="1",
        summary="World attacks on the controller (spoofed, hidden, stuck, stale, dark "
        "sensors) paired by seed with clean runs: KPI harm, success, guard detection",
        tags=Tags(
            Principle.SECURITY, NistFunction.MEASURE, ("AML.T0043", "AML.T0015"), ("Art. 15",)
        ),
        supports=frozenset({"controller"}),
    )
    threshold_metrics = ("worst_change_pct", "success_rate", "guard_detection_rate", "failed_cells")

    def _run(self, ctx: CheckContext) -> CheckResult:
        if ctx.world is None:
            raise RunError("the red-team check needs the sandbox (cityx[sumo])")
        options = {**CHECK_DEFAULTS, **ctx.options}
        plan = CampaignPlan(
            controller=str(ctx.submission_dir.resolve()),
            scenarios=(str(options["scenario"]),),
            attacks=tuple(str(a) for a in options["attacks"]),
            intensities=tuple(float(x) for x in options["intensities"]),
            seeds=tuple(int(s) for s in options["seeds"]),
            seconds=int(options["seconds"]),
            demand=float(options["demand"]),
            thresholds=Thresholds(
                success_pct=float(options["success_pct"]),
                high_pct=float(options["high_pct"]),
                critical_pct=float(options["critical_pct"]),
            ),
        )
        root = getattr(ctx.world, "root", None)
        out = (
            Path(root).parent / "redteam"
            if root is not None
            else Path(tempfile.mkdtemp(prefix="cityx-redteam-"))
        )
        result = run_campaign(plan, out, workers=int(options["workers"]), record=False)
        changes = [g["change_pct"]["value"] for g in result.groups]
        known = [c for c in changes if c is not None]
        ok = [c for c in result.cells if c["status"] == "ok"]
        metrics = {
            "worst_change_pct": Metric(max(known) if known else None, unit="%"),
            "success_rate": Metric(
                sum(bool(c is not None and c >= plan.thresholds.success_pct) for c in changes)
                / len(changes)
                if changes
                else None
            ),
            "guard_detection_rate": Metric(
                sum(bool(c["detection"] and c["detection"]["guard"]) for c in ok) / len(ok)
                if ok
                else None
            ),
            "failed_cells": Metric(float(len(result.failed))),
        }
        findings = list(result.findings)
        for name, metric in metrics.items():
            threshold = ctx.threshold_for(name)
            verdict = threshold.judge(metric.value) if threshold else None
            if verdict is not None:
                severity, reason = verdict
                findings.append(
                    Finding(
                        id=f"{self.meta.id}/{name}",
                        check=self.meta.id,
                        title=f"Red-team campaign: {name} out of the policy's limits",
                        severity=severity,
                        severity_reason=reason,
                        tags=self.meta.tags,
                        evidence=Evidence(
                            metrics={name: metric.value}, files=(str(out / CAMPAIGN_FILE),)
                        ),
                    )
                )
        return CheckResult(
            self.meta.id,
            status_from(tuple(findings)),
            metrics=metrics,
            findings=tuple(findings),
            details={
                "campaign": str(out / CAMPAIGN_FILE),
                "groups": [dict(g) for g in result.groups],
                "failed": [dict(f) for f in result.failed],
            },
        )


__all__ = [
    "CAMPAIGN_FILE",
    "CHECK_DEFAULTS",
    "CLEAN",
    "CampaignPlan",
    "CampaignResult",
    "Cell",
    "RedteamCampaign",
    "Thresholds",
    "detection",
    "reproduce_command",
    "run_campaign",
    "run_cell",
    "summarise",
]
