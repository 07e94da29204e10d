"""Running the suite against an endpoint and judging each case.

A case *passes* when the endpoint's answer to its last request matches the
expected outcome: accepted when it should be, rejected when it should be,
and, when the endpoint gives a reason code, with exactly the expected one
(a rejection for another reason fails, naming both codes). A rejection
without a code passes unless codes are required (``require_reasons``).
Earlier requests of a case prime the endpoint and must be accepted.

A request the endpoint never answers fails its case; if the endpoint has
not answered anything yet, the run stops with :class:`EndpointError`
instead (it is not there, and every case would just wait out its timeout).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cityx.core.seeding import check_seed, derive_seed

from ..errors import InteropError
from ..profiles import DEFAULT_PROFILE, Profile, profile_named
from .cases import AUDIENCE, SUITE_VERSION, Case, Context, Expected, make_issuers, select
from .protocol import Answer, BadAnswer, Endpoint, EndpointError, NoAnswer


@dataclass(frozen=True, slots=True)
class CaseResult:
    """How one case went: ``reason`` says why it passed or failed, in words and codes."""

    id: str
    passed: bool
    reason: str
    expected: Expected
    answer: Answer | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "passed": self.passed, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Report:
    """The results of one run of the suite against one target."""

    target: str
    suite: str
    seed: int
    cases: tuple[CaseResult, ...]
    profile: Profile = DEFAULT_PROFILE
    """The profile the endpoint claimed, which chose the cases."""

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.cases)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def failures(self) -> frozenset[str]:
        return frozenset(result.id for result in self.cases if not result.passed)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile.value,
            "cases": [result.to_json() for result in self.cases],
            "passed": self.passed,
            "failed": self.failed,
        }


def _said(answer: Answer) -> str:
    if answer.accepted:
        return "accepted"
    return f"rejected ({answer.reason})" if answer.reason else "rejected (no reason code)"


def judge(expected: Expected, answer: Answer, *, require_reasons: bool = False) -> tuple[bool, str]:
    """Whether ``answer`` meets ``expected``, and why, in one line."""
    if answer.accepted != expected.accepted:
        return False, f"expected {expected}, got {_said(answer)}"
    if expected.accepted:
        return True, "accepted, as expected"
    assert expected.reason is not None
    if answer.reason is None:
        if require_reasons:
            return False, f"expected {expected}, got a rejection without a reason code"
        return True, f"rejected without a reason code (expected {expected.reason.value})"
    if answer.reason != expected.reason.value:
        return False, f"expected {expected}, got {_said(answer)}"
    return True, f"{_said(answer)}, as expected"


def run_suite(
    endpoint: Endpoint,
    *,
    seed: int = 0,
    audience: str = AUDIENCE,
    cases: Iterable[str] | None = None,
    timeout_s: float = 5.0,
    require_reasons: bool = False,
    clock: Callable[[], float] = time.time,
    profile: Profile | str = DEFAULT_PROFILE,
) -> Report:
    """Run the cases of the ``profile`` the endpoint claims (or the named ``cases``), in order."""
    check_seed(seed)
    claimed = profile_named(profile)
    if not timeout_s > 0:
        raise InteropError(f"the timeout must be positive seconds, not {timeout_s!r}")
    chosen = select(cases, profile=claimed)
    # jti values must differ between runs (a long-lived endpoint remembers them), keys must not.
    nonce = derive_seed(seed, "conformance/jti", str(time.time_ns()))
    context = Context(make_issuers(seed), audience=audience, clock=clock, nonce=nonce)
    results: list[CaseResult] = []
    answered = False
    for case in chosen:
        result, heard = _run_case(case, context, endpoint, timeout_s, require_reasons)
        if not heard and not answered:
            raise EndpointError(
                f"no answer from the endpoint at {endpoint.target} within {timeout_s:g} s; "
                "is it running and listening there?"
            )
        answered = True
        results.append(result)
    return Report(endpoint.target, SUITE_VERSION, seed, tuple(results), claimed)


def _run_case(
    case: Case, context: Context, endpoint: Endpoint, timeout_s: float, require_reasons: bool
) -> tuple[CaseResult, bool]:
    """The case's result, and whether the endpoint answered anything in it."""
    requests = case.build(context)
    answer: Answer | None = None
    for i, request in enumerate(requests):
        try:
            answer = endpoint.exchange(request, timeout_s)
        except NoAnswer as exc:
            return CaseResult(case.id, False, str(exc), case.expected, None), i > 0
        except BadAnswer as exc:
            return CaseResult(case.id, False, f"bad answer: {exc}", case.expected, None), True
        last = i == len(requests) - 1
        if not last and not answer.accepted:
            reason = (
                f"priming request {i + 1} of {len(requests)} should be accepted, "
                f"got {_said(answer)}"
            )
            return CaseResult(case.id, False, reason, case.expected, answer), True
    assert answer is not None
    passed, reason = judge(case.expected, answer, require_reasons=require_reasons)
    return CaseResult(case.id, passed, reason, case.expected, answer), True


__all__ = ["CaseResult", "Report", "judge", "run_suite"]
