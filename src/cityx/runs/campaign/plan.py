"""A campaign's plan: the grid of cells, its controller, and when an attack succeeded.

Words used here: a *campaign plan* is a grid, scenario x attack x
intensity x seed, against one *controller* (a controller plugin's id or a
controller submission folder). Each point of the grid is a *cell*: one
simulation with the attack (or, for a message-path attack, a man in the
middle on the secure loop's bus) and a runtime guard after it. Each
(scenario, seed) also gets one *clean* cell (attack ``"none"``), the same
run without the attack. A *group* is the cells of one (scenario, attack,
intensity) over the seeds. The *thresholds* say when an attack succeeded
and how bad a finding is, in percent worse on one KPI.

A *reused* cell is not simulated: its attack acts only on the observation
path (:func:`cityx.attacks.attack_path`) and the controller reads no
observation (``ControllerPlugin.reads_observations``: fixed time,
actuated), so the attacked run is, KPI for KPI, the clean run of the same
scenario and seed, and the campaign takes that run's record. Attacks on the
world (phantom vehicles) or on the bus are never reused.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cityx.attacks import AttackPath, MessageAttack, attack_path, world_attack, world_attack_ids
from cityx.core import InputError, Severity
from cityx.core.seeding import check_seed
from cityx.worlds.traffic import is_controller_plugin, reads_observations

CLEAN = "none"


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

    def level(self, change_pct: float | None) -> Severity | None:
        """The class of a change: None below ``success_pct`` (or unknown), else a severity."""
        if change_pct is None or change_pct < self.success_pct:
            return None
        return self.severity(change_pct)


def group_key(scenario: str, attack: str, intensity: float) -> str:
    """A group's folder name: ``SCENARIO-DIGEST/ATTACK/iINTENSITY`` (a path-safe scenario)."""
    stem = re.sub(r"[^A-Za-z0-9.-]+", "_", Path(scenario).stem or scenario)
    digest = hashlib.sha256(scenario.encode()).hexdigest()[:6]
    return f"{stem}-{digest}/{attack}/i{intensity:g}"


@dataclass(frozen=True, slots=True)
class Cell:
    """One simulation of a campaign; ``attack`` is ``"none"`` for a clean run."""

    scenario: str
    attack: str
    intensity: float
    seed: int

    @property
    def key(self) -> str:
        return f"{group_key(self.scenario, self.attack, self.intensity)}/s{self.seed}"

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
        plugin = is_controller_plugin(self.controller)
        if messages and plugin:
            raise InputError(
                f"{', '.join(messages)} attack(s) the secure loop, which only a submitted "
                "controller runs behind",
                where="attacks",
                hint="attack a controller submission folder, or use sensor attacks",
            )
        if self.bus is not None and plugin:
            raise InputError(
                "a bus wires a submitted controller, not a controller plugin",
                where="bus",
                hint="attack a controller submission folder, or drop the bus",
            )
        if messages and self.bus is None:
            object.__setattr__(self, "bus", "memory")
        if not plugin and not Path(self.controller).is_dir():
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

    def reuse_reason(self, cell: Cell) -> str | None:
        """Why ``cell`` can take its clean run's record instead of a simulation, or None.

        Only when the attack acts on the observation path alone and the controller
        reads no observation: the attacked run is then the clean run, step for step.
        """
        if cell.attack == CLEAN or reads_observations(self.controller):
            return None
        if attack_path(world_attack(cell.attack)) is not AttackPath.OBSERVATION:
            return None
        return (
            f"{cell.attack} acts only on the observation path and controller "
            f"{self.controller!r} reads no observation: its KPIs are the clean run's"
        )

    def group(self, scenario: str, attack: str, intensity: float) -> CampaignPlan:
        """The plan of one group alone: everything else as in this plan."""
        return replace(self, scenarios=(scenario,), attacks=(attack,), intensities=(intensity,))

    def with_absolute_paths(self) -> CampaignPlan:
        """This plan with its submission folder and scenario files as absolute paths.

        A plan written for someone to run again then works from any folder.
        """
        controller = self.controller
        if not is_controller_plugin(controller):
            controller = str(Path(controller).resolve())
        scenarios = tuple(
            str(Path(s).resolve()) if Path(s).is_file() else s for s in self.scenarios
        )
        return replace(self, controller=controller, scenarios=scenarios)

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

    def to_toml(self) -> str:
        """The plan as a TOML plan file that :meth:`from_toml` reads back equal."""
        obj = self.to_json()
        params, thresholds = obj.pop("params"), obj.pop("thresholds")
        lines = [f"{_key(k)} = {_value(v)}" for k, v in obj.items() if v is not None]
        for attack, values in params.items():
            lines += ["", f"[params.{_key(attack)}]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in values.items()]
        lines += ["", "[thresholds]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in thresholds.items()]
        return "\n".join(lines) + "\n"

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
        return digest(self.to_json())


def digest(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _string(text: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr spells floats as TOML does: 0.5, 1e-05, inf, -inf, nan.
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


__all__ = ["CLEAN", "CampaignPlan", "Cell", "Thresholds", "digest", "group_key"]
