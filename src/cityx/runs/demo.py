"""The demo: the default trials on the embedded examples, and a poisoning drill.

:func:`run_demo` runs, in order, the metro-congestion predictor on its
holdout data (with an AI Verify export of its fairness results), the
acme-signals controller in SUMO against the baselines, and the *poisoning
drill*: the red team backdoors a copy of metro-congestion's training data
(:mod:`.drill`), and a trial under an admission-and-audit policy must find
it. The drill's *F1* is over the poisoned rows, from the rows the audit
flagged. ``cityx demo`` is this function with its outcome printed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cityx.core import InputError, RunError
from cityx.defenses.poisoning.details import PoisoningDetails, Sanitising
from cityx.governance.aiverify import export_trial

from .drill import poisoning_drill
from .trial import TrialOutcome, TrialPlan, run_trial

# The demo's trials, in order: a predictor, then a controller in the sandbox.
DEMO_SUBMISSIONS = ("metro-congestion", "acme-signals")
DRILL_RATE, DRILL_SEED = 0.05, 1

Progress = Callable[[str, int, int], None]


def example_submission(name: str = DEMO_SUBMISSIONS[0]) -> Path:
    """An embedded example submission (in the source checkout)."""
    folder = Path(__file__).resolve().parents[3] / "examples" / "submissions" / name
    if not (folder / "cityx.toml").is_file():
        raise InputError(
            "the embedded example is not here; run the demo from a source "
            "checkout (git clone, then make demo)",
            where=str(folder),
        )
    return folder


@dataclass(frozen=True, slots=True)
class DemoTrial:
    """One of the demo's trials: its outcome, and where its AI Verify export went."""

    name: str
    outcome: TrialOutcome
    aiverify: tuple[Path, ...] = ()

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "submission": self.name,
            "trial_id": self.outcome.trial_id,
            "decision": self.outcome.gate.decision.value,
            "report": str(self.outcome.report_path),
            "results": str(self.outcome.results_path),
        }
        if self.aiverify:
            found["aiverify"] = [str(p) for p in self.aiverify]
        return found


@dataclass(frozen=True, slots=True)
class DrillOutcome:
    """What the audit made of the drill's poisoned copy, and the trial's gate."""

    attack: str
    rate: float
    poisoned_rows: int
    flagged_rows: int
    caught_rows: int  # poisoned rows among the flagged ones
    details: PoisoningDetails
    outcome: TrialOutcome

    @property
    def f1(self) -> float:
        return 2 * self.caught_rows / max(self.flagged_rows + self.poisoned_rows, 1)

    @property
    def sanitising(self) -> Sanitising | None:
        return self.details.sanitising

    def to_json(self) -> dict[str, Any]:
        trigger = self.details.trigger
        sanitising = self.details.sanitising
        return {
            "attack": self.attack,
            "rate": self.rate,
            "poisoned_rows": self.poisoned_rows,
            "flagged_rows": self.flagged_rows,
            "f1": round(self.f1, 3),
            "verdict": self.details.verdict,
            "decision": self.outcome.gate.decision.value,
            "trigger": trigger.to_json() if trigger is not None else None,
            "sanitising": sanitising.to_json() if sanitising is not None else {},
            "report": str(self.outcome.report_path),
        }


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    trials: tuple[DemoTrial, ...]
    drill: DrillOutcome
    wall_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": [t.to_json() for t in self.trials],
            "poisoning_drill": self.drill.to_json(),
            "wall_s": round(self.wall_s, 2),
        }


def run_demo(
    out: Path,
    *,
    store: str | None = None,
    workers: int = 2,
    plan: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> DemoOutcome:
    """Run the demo into ``out`` (one folder per trial); ``plan`` adds TrialPlan options."""
    start = time.perf_counter()
    out = Path(out)

    def trial(submission: Path, folder: Path, **extra: Any) -> TrialOutcome:
        options = {"store": store, "workers": workers, **(plan or {}), **extra}
        return run_trial(TrialPlan(submission=submission, out=folder, **options), progress=progress)

    trials = []
    for name in DEMO_SUBMISSIONS:
        outcome = trial(example_submission(name), out / name)
        written: tuple[Path, ...] = ()
        submitted = outcome.document.submission
        if submitted is not None and submitted.kind == "predictor":
            # Fairness results in AI Verify's own format, for its portal.
            written = tuple(export_trial(outcome.out, outcome.out / "aiverify"))
        trials.append(DemoTrial(name, outcome, written))
    folder = out / "poisoning-drill"
    drill = poisoning_drill(
        example_submission("metro-congestion"), folder, rate=DRILL_RATE, seed=DRILL_SEED
    )
    outcome = trial(drill.submission, folder / "trial", policy=drill.policy)
    record = outcome.document.check("poisoning.audit")
    details = record.details if record is not None else None
    if not isinstance(details, PoisoningDetails):
        raise RunError(
            "the drill's trial has no poisoning audit details",
            where=str(outcome.results_path),
            hint="check that the drill policy enables poisoning.audit",
        )
    flagged = np.zeros(drill.poisoned.size, dtype=bool)
    flagged[list(details.flagged_rows)] = True
    result = DrillOutcome(
        attack=drill.attack,
        rate=drill.rate,
        poisoned_rows=int(drill.poisoned.sum()),
        flagged_rows=int(flagged.sum()),
        caught_rows=int((flagged & drill.poisoned).sum()),
        details=details,
        outcome=outcome,
    )
    return DemoOutcome(tuple(trials), result, time.perf_counter() - start)


__all__ = [
    "DEMO_SUBMISSIONS",
    "DemoOutcome",
    "DemoTrial",
    "DrillOutcome",
    "example_submission",
    "run_demo",
]
