"""The smoke run of ``cityx submission validate --load`` for a controller.

A *smoke run* drives a controller submission for :data:`SMOKE_SECONDS`
simulated seconds on the generated grid (:data:`SMOKE_SCENARIO`, the
smallest scenario in the catalogue: nine signals, built at run time, so it
needs no downloaded network), through the same isolated scorer and world
child process a trial uses (:func:`.world.run_controller_world`). Loading
the model and calling it once on schema-valid rows (:mod:`cityx.submissions.loading`)
cannot show what the sandbox's own observations do to it; the smoke run can.
A controller that crashes, returns NaN or the wrong number of scores,
overruns its per-step timeout, or whose run does not finish within
:data:`SMOKE_TIMEOUT_S` of wall time, is a validation *problem* naming what
happened (exit 2). A finished run reports its decision time per step
(:mod:`.submitted`), p95 included.

It lives here, not in :mod:`cityx.submissions`, because a world run is a
``runs`` capability, a layer above submissions.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cityx.core import MANIFEST_FILE, Problem, SystemKind
from cityx.submissions import Validation, validate_submission
from cityx.worlds import WorldCrashed

from .submitted import opt_ins, read_latency
from .world import run_controller_world

SMOKE_SCENARIO = "grid3x3"
SMOKE_SECONDS = 60
# Ten times the simulated time: a controller that slow has no place at a real junction,
# and the smoke run must not hang validation.
SMOKE_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class SmokeRun:
    """What the smoke run showed: ``problem`` is None when the controller ran it through."""

    scenario: str
    seconds: int
    wall_s: float
    complete: bool
    decision_latency: dict[str, Any] | None
    problem: Problem | None

    @property
    def decision_p95_ms(self) -> float | None:
        if self.decision_latency is None:
            return None
        value = self.decision_latency.get("p95_ms")
        return float(value) if isinstance(value, int | float) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seconds": self.seconds,
            "wall_s": self.wall_s,
            "complete": self.complete,
            "decision_latency": self.decision_latency,
            "problem": None if self.problem is None else self.problem.to_json(),
        }


def smoke_run(
    folder: Path,
    *,
    trust_code: bool = False,
    trust_pickle: bool = False,
    scenario: str = SMOKE_SCENARIO,
    seconds: int = SMOKE_SECONDS,
    timeout_s: float = SMOKE_TIMEOUT_S,
    seed: int = 0,
) -> SmokeRun:
    """Run the controller submission in ``folder`` on ``scenario`` for ``seconds``.

    The opt-ins are the user's (``--trust-code``, ``--trust-pickle``); a missing one is
    raised as a ManifestError before the world starts, as in any world run.
    """
    where = f"{Path(folder) / MANIFEST_FILE}: [artifact]"
    label = f"the {seconds} s smoke run on {scenario}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cityx-smoke-") as tmp:
        out = Path(tmp)
        problem: Problem | None = None
        complete = False
        try:
            result = run_controller_world(
                scenario,
                Path(folder),
                seconds=seconds,
                seed=seed,
                out=out,
                timeout_s=timeout_s,
                trusted_by=opt_ins(trust_code=trust_code, trust_pickle=trust_pickle),
            )
            complete = result.complete
            if not complete:
                problem = Problem(where, f"{label} did not complete")
        except WorldCrashed as exc:
            # ControllerFailed (crash, NaN, wrong count, step timeout) is a WorldCrashed too;
            # a run killed at timeout_s is one.
            problem = Problem(where, f"{label} failed: {exc.message}")
        latency = read_latency(out)
    return SmokeRun(
        scenario,
        seconds,
        round(time.perf_counter() - started, 3),
        complete,
        latency,
        problem,
    )


def validate_loaded(
    folder: Path, *, trust_code: bool = False, trust_pickle: bool = False
) -> tuple[Validation, SmokeRun | None]:
    """``validate --load``: validation with the load check and, for a controller that
    passed both, the smoke run, whose problem (if any) joins the validation's."""
    validation = validate_submission(
        folder, load=True, trust_code=trust_code, trust_pickle=trust_pickle
    )
    manifest = validation.manifest
    if not validation.ok or manifest is None or manifest.system.kind is not SystemKind.CONTROLLER:
        return validation, None
    smoke = smoke_run(folder, trust_code=trust_code, trust_pickle=trust_pickle)
    if smoke.problem is None:
        return validation, smoke
    return replace(validation, problems=(*validation.problems, smoke.problem)), smoke


__all__ = [
    "SMOKE_SCENARIO",
    "SMOKE_SECONDS",
    "SMOKE_TIMEOUT_S",
    "SmokeRun",
    "smoke_run",
    "validate_loaded",
]
