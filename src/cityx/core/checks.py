"""The check contract.

A *check* is a plugin that measures one thing about a submission (its
admission, nominal performance, input contract, ...) and returns a
:class:`~cityx.core.findings.CheckResult`, whose *details* are of the type
the check class declares in ``details_type`` (:mod:`cityx.core.details`).
A *threshold* turns a metric into a finding: below ``fail`` (or above, for
metrics where lower is better) is a high-severity finding, below
``conditional`` a medium one. The *problems* of a submission are what
admission found wrong before anything ran.
"""

from __future__ import annotations

import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, final

import numpy as np
from numpy.typing import NDArray

from .details import Details, RawDetails
from .errors import CityxError, PolicyError, TargetError, TargetTimeout
from .findings import CheckResult, CheckStatus, Evidence, Finding, Metric, Severity
from .manifest import Manifest
from .registry import PluginMeta
from .schema import FloatArray
from .seeding import stream
from .systems import Controller, Predictor, WorldRunner
from .taxonomy import NistFunction, Principle, Tags


class Level(StrEnum):
    ERROR = "error"  # the submission cannot be admitted until this is fixed
    WARNING = "warning"  # admitted, but the report shows it


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a submission: where (file and field) and what."""

    where: str
    message: str
    level: Level = Level.ERROR

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_json(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message, "level": self.level.value}


@dataclass(frozen=True, slots=True)
class LabelledBatch:
    """Feature rows in schema order with their true labels or values.

    ``rejected`` marks rows that broke the input schema; they are kept
    out of ``features`` and reported, never silently scored.
    """

    features: FloatArray
    truth: NDArray[Any]
    source: str
    rejected_rows: int = 0
    rejected_by_feature: Mapping[str, int] = field(default_factory=dict)
    rejected_examples: tuple[Mapping[str, Any], ...] = ()


class Direction(StrEnum):
    MIN = "min"  # higher is better: the value must stay at or above the limit
    MAX = "max"  # lower is better: the value must stay at or below the limit


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    direction: Direction
    fail: float | None = None
    conditional: float | None = None

    def judge(self, value: float | None) -> tuple[Severity, str] | None:
        """The severity this value earns, with a reason, or None if it is fine."""
        if value is None:
            return Severity.MEDIUM, f"{self.metric} could not be measured"

        def worse(limit: float) -> bool:
            return value < limit if self.direction is Direction.MIN else value > limit

        word = "below" if self.direction is Direction.MIN else "above"
        if self.fail is not None and worse(self.fail):
            return (
                Severity.HIGH,
                f"{self.metric} = {value:.4g} is {word} the fail limit {self.fail:g}",
            )
        if self.conditional is not None and worse(self.conditional):
            return (
                Severity.MEDIUM,
                f"{self.metric} = {value:.4g} is {word} the conditional limit {self.conditional:g}",
            )
        return None

    def judge_interval(self, metric: Metric) -> tuple[Severity, Severity | None, str] | None:
        """The severity ``metric``'s interval supports at least, the worst it cannot rule
        out (None when the same), and a reason stating both; None when both ends are fine.

        The supported class is the one of the interval's favourable end (the lower
        end for a metric where lower is better); the open one is the class of the
        other end. A metric without an interval is judged on its value alone. When
        only the open end crosses a limit, the finding is ``low``: nothing is shown,
        and nothing is ruled out.
        """
        if metric.value is None or metric.ci_low is None or metric.ci_high is None:
            verdict = self.judge(metric.value)
            return None if verdict is None else (verdict[0], None, verdict[1])
        good, bad = (
            (metric.ci_high, metric.ci_low)
            if self.direction is Direction.MIN
            else (metric.ci_low, metric.ci_high)
        )
        at_least, at_most = self.judge(good), self.judge(bad)
        if at_most is None:
            return None
        span = f"95 % interval [{metric.ci_low:.4g}, {metric.ci_high:.4g}]"
        if at_least is None:
            return (
                Severity.LOW,
                at_most[0],
                f"undetermined: the interval's worse end reaches {at_most[0].value} "
                f"({at_most[1]}), its better end is within the limits; {span}",
            )
        if at_least[0] is at_most[0]:
            return at_least[0], None, f"{at_least[1]} over the whole {span}"
        return (
            at_least[0],
            at_most[0],
            f"at least {at_least[0].value} ({at_least[1]}), {at_most[0].value} not ruled "
            f"out; {span}",
        )


@dataclass(frozen=True, slots=True)
class CheckContext:
    """Everything a check may use; built by the trial runner."""

    submission_dir: Path
    manifest: Manifest | None
    seed: int
    problems: tuple[Problem, ...] = ()
    load_s: float | None = None
    # The opt-ins that let vendor code run (``--trust-code``, ``--trust-pickle``), each
    # with who gave it: admission states it as given, never more.
    trusted_by: Mapping[str, str] = field(default_factory=dict)
    predictor: Predictor | None = None
    controller: Controller | None = None
    world: WorldRunner | None = None
    holdout: LabelledBatch | None = None
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def threshold_for(self, metric: str) -> Threshold | None:
        """The policy's limit for ``metric``, or for its family (``recall[*]``)."""
        found = self.thresholds.get(metric)
        if found is None and metric.endswith("]") and "[" in metric:
            found = self.thresholds.get(metric[: metric.index("[")] + "[*]")
        return found

    def rng(self, check_id: str, *labels: str) -> np.random.Generator:
        return stream(self.seed, "check", check_id, *labels)


class Check(ABC):
    """Base class of check plugins: ``run`` validates, then calls ``_run``.

    ``threshold_metrics`` names the metrics a policy may set limits on;
    a name ending in ``[*]`` stands for a family (``recall[*]``).
    ``details_type`` is the type of the details ``_run`` returns
    (:class:`~cityx.core.details.RawDetails` for a check that declares none).
    ``option_defaults`` names the options a policy may give it, with their
    defaults; :meth:`configure` refuses any other option, or one of another
    type, and ``_run`` sees every option filled in.

    ``principles`` says which AI Verify principles the check *tests*, each
    with the metrics that carry that evidence (empty: the check's run
    itself): a principle reads "OK" only when a check that tests it ran and
    measured them. Left None, the check tests the principle of its tags.
    :meth:`waiver` says why the check does not apply to a submission, when
    the submission declares so in writing; the gate then does not count its
    skip against a ``pass``.
    """

    meta: ClassVar[PluginMeta]
    principles: ClassVar[Mapping[Principle, tuple[str, ...]] | None] = None
    threshold_metrics: ClassVar[tuple[str, ...]] = ()
    details_type: ClassVar[type[Details]] = RawDetails
    option_defaults: ClassVar[Mapping[str, Any]] = {}

    @final
    @classmethod
    def configure(cls, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every declared option, from ``options`` or its default; a PolicyError names a bad one."""
        given = dict(options or {})
        where = f'checks."{cls.meta.id}".options'
        extra = sorted(set(given) - set(cls.option_defaults))
        if extra:
            raise PolicyError(
                f"unknown option(s) {', '.join(extra)}",
                where=where,
                hint=f"known: {', '.join(sorted(cls.option_defaults)) or 'none'}",
            )
        for name, value in given.items():
            default = cls.option_defaults[name]
            if not _same_kind(value, default):
                raise PolicyError(
                    f"option {name!r} must be {_kind_name(default)}, got {value!r}", where=where
                )
        return {**cls.option_defaults, **given}

    @classmethod
    def tested_principles(cls) -> Mapping[Principle, tuple[str, ...]]:
        """The principles this check tests, each with the metrics that show it."""
        if cls.principles is None:
            return {cls.meta.tags.principle: ()}
        return cls.principles

    def waiver(self, manifest: Manifest) -> str | None:
        """The submission's written reason why this check does not apply, if it gives one."""
        return None

    @final
    def run(self, ctx: CheckContext) -> CheckResult:
        cid = self.meta.id
        kind = ctx.manifest.system.kind.value if ctx.manifest else None
        if self.meta.supports and kind is not None and kind not in self.meta.supports:
            return CheckResult(cid, CheckStatus.SKIPPED, message=f"not for {kind} submissions")
        start = time.perf_counter()
        try:
            result = self._run(replace(ctx, options=self.configure(ctx.options)))
            if result.details is not None and not isinstance(result.details, self.details_type):
                raise TypeError(
                    f"details are a {type(result.details).__name__}, not the declared "
                    f"{self.details_type.__name__}"
                )
        except TargetError as exc:
            result = CheckResult(
                cid, CheckStatus.FAILED, findings=(target_failure(cid, exc),), message=str(exc)
            )
        except CityxError as exc:
            result = CheckResult(cid, CheckStatus.ERROR, message=str(exc))
        except Exception as exc:  # a bug in a check must not kill the trial
            last = traceback.format_exception_only(exc)[-1].strip()
            result = CheckResult(cid, CheckStatus.ERROR, message=f"internal error: {last}")
        wall = time.perf_counter() - start
        return CheckResult(
            result.check,
            result.status,
            result.metrics,
            result.findings,
            result.details,
            wall,
            result.message,
        )

    @abstractmethod
    def _run(self, ctx: CheckContext) -> CheckResult:
        """Measure, and return metrics and findings."""


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` may stand where ``default`` does (ints for floats, lists for lists)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, int | float):
        return isinstance(value, int | float) and (
            isinstance(default, float) or isinstance(value, int)
        )
    if isinstance(default, list | tuple):
        return isinstance(value, list | tuple)
    return isinstance(value, type(default))


def _kind_name(default: Any) -> str:
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, int):
        return "an integer"
    if isinstance(default, float):
        return "a number"
    if isinstance(default, list | tuple):
        return "a list"
    return f"a {type(default).__name__}"


def target_failure(check_id: str, exc: TargetError) -> Finding:
    """The finding for a system under test that hung, crashed or answered garbage."""
    hung = isinstance(exc, TargetTimeout)
    return Finding(
        id=f"{check_id}/target-{'timeout' if hung else 'failure'}",
        check=check_id,
        title="The system under test stopped answering"
        if hung
        else "The system under test failed while being called",
        severity=Severity.HIGH,
        severity_reason="a deployed system that hangs or crashes leaves the city without "
        "its decisions",
        tags=Tags(Principle.ROBUSTNESS, NistFunction.MEASURE, ("AML.T0029",), ("Art. 15",)),
        description=str(exc),
        evidence=Evidence(metrics={"error": type(exc).__name__}),
    )


def status_from(findings: tuple[Finding, ...]) -> CheckStatus:
    """``failed`` once a finding is medium or worse; else ``undetermined`` when a finding
    leaves medium or worse open (:attr:`Finding.undetermined`); low and info ones are notes."""
    worst = max((f.severity.rank for f in findings), default=-1)
    if worst >= Severity.MEDIUM.rank:
        return CheckStatus.FAILED
    open_ = max((f.severity_upper.rank for f in findings if f.severity_upper), default=-1)
    return CheckStatus.UNDETERMINED if open_ >= Severity.MEDIUM.rank else CheckStatus.PASSED


__all__ = [
    "Check",
    "CheckContext",
    "Direction",
    "LabelledBatch",
    "Level",
    "Problem",
    "Threshold",
    "status_from",
    "target_failure",
]
