"""Policies: what a trial runs and the limits that turn metrics into findings.

A *policy* is a TOML file. ``[gate]`` says which finding severity fails the
deployment gate and which makes it *conditional* (deploy only with the
listed conditions met). Each ``[checks."ID"]`` table enables a check and may
set *thresholds* on its metrics::

    [checks."performance.nominal"]
    macro_f1 = { fail_below = 0.6, conditional_below = 0.75 }

``fail_below``/``conditional_below`` are for metrics where higher is better,
``fail_above``/``conditional_above`` for those where lower is better.

``[plugins] allow = ["dist-name", ...]`` is an *allow-list*: plugins that
installed distributions register through entry points load only when their
distribution is listed (cityx's own always load). Without it, every
installed plugin may load.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityx.core import Direction, PolicyError, Registry, Severity, Threshold

POLICY_SCHEMA_VERSION = 1


class _Limit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fail_below: float | None = None
    conditional_below: float | None = None
    fail_above: float | None = None
    conditional_above: float | None = None

    @model_validator(mode="after")
    def _one_direction(self) -> _Limit:
        below = self.fail_below is not None or self.conditional_below is not None
        above = self.fail_above is not None or self.conditional_above is not None
        if below == above:
            raise ValueError("give fail_below/conditional_below or fail_above/conditional_above")
        fb, cb, fa, ca = (
            self.fail_below,
            self.conditional_below,
            self.fail_above,
            self.conditional_above,
        )
        if fb is not None and cb is not None and fb > cb:
            raise ValueError("fail_below must not exceed conditional_below")
        if fa is not None and ca is not None and fa < ca:
            raise ValueError("fail_above must not be below conditional_above")
        return self

    def threshold(self, metric: str) -> Threshold:
        if self.fail_below is not None or self.conditional_below is not None:
            return Threshold(metric, Direction.MIN, self.fail_below, self.conditional_below)
        return Threshold(metric, Direction.MAX, self.fail_above, self.conditional_above)


class _Gate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    fail_at: Severity = Severity.HIGH
    conditional_at: Severity = Severity.MEDIUM

    @model_validator(mode="after")
    def _ordered(self) -> _Gate:
        if self.conditional_at.rank > self.fail_at.rank:
            raise ValueError("conditional_at must not be more severe than fail_at")
        return self


class _Plugins(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    allow: list[str] | None = None


class _PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    schema_version: Literal[1]
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: str = ""
    gate: _Gate = _Gate()
    plugins: _Plugins = _Plugins()
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    enabled: bool = True
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    version: str
    title: str
    fail_at: Severity
    conditional_at: Severity
    checks: Mapping[str, CheckPolicy]
    path: str
    sha256: str
    plugins_allow: tuple[str, ...] | None = None  # distributions whose plugins may load

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "id": self.id,
            "version": self.version,
            "path": self.path,
            "sha256": self.sha256,
        }
        if self.plugins_allow is not None:
            found["plugins_allow"] = list(self.plugins_allow)
        return found

    def registry(self) -> Registry:
        """The plugin registry this policy allows."""
        return Registry(allow=self.plugins_allow)


def default_policy_path() -> Path:
    return Path(str(resources.files("cityx") / "policies" / "default.toml"))


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy file (the default one when ``path`` is None)."""
    path = Path(path) if path is not None else default_policy_path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read: {exc.strerror}", where=str(path)) from exc
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"not valid TOML: {exc}", where=str(path)) from exc
    try:
        parsed = _PolicyFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise PolicyError(f"{loc}: {err['msg']}", where=str(path)) from exc
    checks = {cid: _check_policy(cid, body, str(path)) for cid, body in parsed.checks.items()}
    return Policy(
        parsed.id,
        parsed.version,
        parsed.title,
        parsed.gate.fail_at,
        parsed.gate.conditional_at,
        checks,
        str(path),
        hashlib.sha256(data).hexdigest(),
        None if parsed.plugins.allow is None else tuple(parsed.plugins.allow),
    )


def _check_policy(check_id: str, body: dict[str, Any], where: str) -> CheckPolicy:
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError(f'checks."{check_id}".enabled must be true or false', where=where)
    options = body.get("options", {})
    if not isinstance(options, dict):
        raise PolicyError(f'checks."{check_id}".options must be a table', where=where)
    thresholds = {}
    for metric, limit in body.items():
        if metric in ("enabled", "options"):
            continue
        try:
            thresholds[metric] = _Limit.model_validate(limit).threshold(metric)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise PolicyError(f'checks."{check_id}".{metric}: {msg}', where=where) from exc
    return CheckPolicy(enabled, thresholds, options)


def threshold_allowed(metric: str, declared: tuple[str, ...]) -> bool:
    """Whether ``metric`` is one a check declares (``recall[*]`` matches a family)."""
    return any(
        metric == d or (d.endswith("[*]") and metric.startswith(d[:-2]) and metric.endswith("]"))
        for d in declared
    )
