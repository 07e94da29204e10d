"""A vendor's claims checked against what the trial measured.

A *claim* is one entry of the manifest's ``[claims]`` table: a number
(``macro_f1 = 0.80``: the vendor says the metric is this) or a list of
names (``scenarios = ["cologne3"]``: the vendor says it was tested on these).
The comparison is a pure function of the claims and the trial's results:

- a numeric claim is matched to the metric of that name (or
  ``CHECK:METRIC`` to pick the check); it is ``consistent`` when it lies in
  the metric's measured 95 % interval, a ``finding`` when outside it,
  ``undetermined`` when the metric has no interval (a point value cannot
  say whether the claim is within noise), and ``not assessed`` when no
  check measured it;
- a ``scenarios`` claim lists scenarios: each one the trial ran is
  ``consistent``, each one it did not is ``not assessed``. Other list
  claims are shown, never judged.

The datasheet's prose is shown in the report as written; nothing here
reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cityx.core import Metric, TrialResults

from .report import fmt_metric

CONSISTENT, FINDING, UNDETERMINED, NOT_ASSESSED, SHOWN = (
    "consistent",
    "finding",
    "undetermined",
    "not assessed",
    "shown, not judged",
)
_SCENARIO_KEYS = ("scenario", "scenarios")


@dataclass(frozen=True, slots=True)
class ClaimCheck:
    claim: str
    claimed: str
    measured: str
    status: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "claimed": self.claimed,
            "measured": self.measured,
            "status": self.status,
            "note": self.note,
        }


def compare_claims(
    claims: Mapping[str, float | list[str]], results: TrialResults
) -> tuple[ClaimCheck, ...]:
    """Each claim against the trial's measurements, in the claims' order."""
    out: list[ClaimCheck] = []
    for name, value in claims.items():
        if isinstance(value, list):
            out += _list_claim(name, value, results)
        else:
            out.append(_number_claim(name, float(value), results))
    return tuple(out)


def _number_claim(name: str, claimed: float, results: TrialResults) -> ClaimCheck:
    found = _metric(name, results)
    if found is None:
        return ClaimCheck(
            name, f"{claimed:g}", "not measured", NOT_ASSESSED, "no check measured it"
        )
    where, metric = found
    measured = f"{fmt_metric(metric)} ({where})"
    if metric.value is None:
        return ClaimCheck(name, f"{claimed:g}", measured, UNDETERMINED, "the metric is undefined")
    low, high = metric.ci_low, metric.ci_high
    if low is None or high is None:
        return ClaimCheck(
            name, f"{claimed:g}", measured, UNDETERMINED, "no interval measured to judge it by"
        )
    if low <= claimed <= high:
        return ClaimCheck(name, f"{claimed:g}", measured, CONSISTENT, "within the interval")
    side = "above" if claimed > high else "below"
    return ClaimCheck(
        name,
        f"{claimed:g}",
        measured,
        FINDING,
        f"the claim is {side} the measured 95 % interval [{low:.4g}, {high:.4g}]",
    )


def _metric(name: str, results: TrialResults) -> tuple[str, Metric] | None:
    check_id, sep, metric_name = name.rpartition(":")
    for record in results.checks or ():
        if sep and record.id != check_id:
            continue
        metric = record.metrics.get(metric_name)
        if metric is not None:
            return f"{record.id}:{metric_name}", metric
    return None


def _list_claim(name: str, values: list[str], results: TrialResults) -> list[ClaimCheck]:
    if name not in _SCENARIO_KEYS:
        return [ClaimCheck(name, ", ".join(values), "", SHOWN, "only scenario lists are checked")]
    ran = sorted(scenarios_run(results))
    measured = ", ".join(ran) or "none"
    return [
        ClaimCheck(f"{name}: {v}", v, measured, CONSISTENT, "the trial ran it")
        if v in ran
        else ClaimCheck(f"{name}: {v}", v, measured, NOT_ASSESSED, "the trial did not run it")
        for v in values
    ]


def scenarios_run(results: TrialResults) -> set[str]:
    """The scenario names the trial's checks record in their details."""
    found: set[str] = set()
    for record in results.checks or ():
        if record.details is None or record.status not in ("passed", "failed", "undetermined"):
            continue
        for key, value in _walk(record.details.to_json(), depth=3):
            if key in _SCENARIO_KEYS:
                if isinstance(value, str):
                    found.add(value)
                elif isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
    return found


def _walk(value: Any, *, depth: int) -> Iterator[tuple[str, Any]]:
    if depth <= 0 or not isinstance(value, Mapping):
        return
    for key, inner in value.items():
        yield str(key), inner
        yield from _walk(inner, depth=depth - 1)


__all__ = [
    "CONSISTENT",
    "FINDING",
    "NOT_ASSESSED",
    "SHOWN",
    "UNDETERMINED",
    "ClaimCheck",
    "compare_claims",
    "scenarios_run",
]
