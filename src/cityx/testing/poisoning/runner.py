"""Run protocol cases: draw, poison, audit without and with a trusted set, in worker processes.

A case that fails records its error and the run goes on: one broken table
must not hide the figures of the others. Peers (other tools' detectors)
are a callable the caller passes (``bench/poisoning.py`` runs them in
their own virtual environment); they run only on the cases marked for them.
"""

from __future__ import annotations

import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cityx.defenses.poisoning import AuditReport, audit

from .attacks import BAND_BY_NAME, poison
from .protocol import FAMILY_FUNCTIONS, Case
from .tables import TableMeta

# (table, trusted, label, source_cols, meta) -> {peer: {"flagged": [...], "wall_s": s} or
# {"error": why}}
Peers = Callable[
    [pd.DataFrame, pd.DataFrame, str, tuple[str, ...], TableMeta], Mapping[str, Mapping[str, Any]]
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One detector's answer on one table, scored against the truth."""

    verdict: str | None  # None for peers, which give no verdict
    flagged_share: float
    f1: float | None  # None on a clean table (nothing to find)
    precision: float | None
    recall: float | None
    wall_s: float
    flagged_sources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "flagged_share": round(self.flagged_share, 4),
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "wall_s": round(self.wall_s, 3),
            "flagged_sources": list(self.flagged_sources),
        }


@dataclass(frozen=True, slots=True)
class CaseResult:
    """What one case gave; ``error`` is set (and the rest partly empty) when it failed."""

    case: Case
    rows: int = 0
    features: int = 0
    sources: int = 0
    variant: str = ""
    rate: float | None = None
    actual_rate: float | None = None
    truth_sources: tuple[str, ...] = ()
    ours: Outcome | None = None
    ours_trusted: Outcome | None = None
    peers: dict[str, Outcome | str] = field(default_factory=dict)  # str: why unavailable
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.case.key,
            "family": self.case.family,
            "attack": self.case.attack,
            "band": self.case.band,
            "seed": self.case.seed,
            "rows": self.rows,
            "features": self.features,
            "sources": self.sources,
            "variant": self.variant,
            "rate": None if self.rate is None else round(self.rate, 4),
            "actual_rate": None if self.actual_rate is None else round(self.actual_rate, 4),
            "truth_sources": list(self.truth_sources),
            "ours": None if self.ours is None else self.ours.to_json(),
            "ours_trusted": None if self.ours_trusted is None else self.ours_trusted.to_json(),
            "peers": {k: v if isinstance(v, str) else v.to_json() for k, v in self.peers.items()},
            "error": self.error,
            "details": self.details,
        }


def score(flagged: NDArray[np.bool_], truth: NDArray[np.bool_]) -> tuple[float, float, float]:
    """F1, precision and recall of ``flagged`` against ``truth`` (0 when nothing is right)."""
    tp = float((flagged & truth).sum())
    if tp == 0:
        return 0.0, 0.0, 0.0
    precision, recall = tp / float(flagged.sum()), tp / float(truth.sum())
    return 2 * precision * recall / (precision + recall), precision, recall


def _outcome(
    flagged: NDArray[np.bool_],
    truth: NDArray[np.bool_] | None,
    *,
    verdict: str | None,
    wall_s: float,
    sources: tuple[str, ...] = (),
) -> Outcome:
    f1 = precision = recall = None
    if truth is not None and truth.any():
        f1, precision, recall = (round(v, 4) for v in score(flagged, truth))
    return Outcome(verdict, float(flagged.mean()), f1, precision, recall, wall_s, sources)


def _ours(report: AuditReport, truth: NDArray[np.bool_] | None) -> Outcome:
    return _outcome(
        np.asarray(report.flagged, dtype=bool),
        truth,
        verdict=report.verdict.value,
        wall_s=report.wall_s,
        sources=tuple(s.source for s in report.sources if s.flagged),
    )


def run_case(case: Case, peers: Peers | None = None) -> CaseResult:
    """Draw, poison and audit one case; never raises (the error is recorded)."""
    try:
        table, label, source_cols, meta = FAMILY_FUNCTIONS[case.family](case.seed)
        truth: NDArray[np.bool_] | None = None
        truth_sources: tuple[str, ...] = ()
        rate = actual = None
        details: dict[str, Any] = {"trusted_rows": len(meta.trusted)}
        if case.attack is not None and case.band is not None:
            poisoned = poison(
                table,
                label=label,
                source_cols=source_cols,
                meta=meta,
                attack=case.attack,
                band=BAND_BY_NAME[case.band],
                seed=case.seed,
            )
            table, truth, truth_sources = poisoned.table, poisoned.truth, poisoned.sources
            rate, actual = poisoned.rate, poisoned.actual_rate
            details |= poisoned.details
        with warnings.catch_warnings(record=True) as caught:
            # numpy's warnings on empty slices inside the audit are counted, not shown: a
            # run prints one JSON object, and a case's figures do not depend on them.
            warnings.simplefilter("always", RuntimeWarning)
            alone = audit(table, label=label, source_cols=source_cols, seed=case.seed)
            trusted = audit(
                table, label=label, source_cols=source_cols, trusted=meta.trusted, seed=case.seed
            )
        details["audit_runtime_warnings"] = len(caught)
        peer_outcomes: dict[str, Outcome | str] = {}
        if case.peers and peers is not None:
            for name, got in peers(table, meta.trusted, label, source_cols, meta).items():
                if "flagged" in got:
                    mask = np.zeros(len(table), dtype=bool)
                    mask[np.asarray(got["flagged"], dtype=np.int64)] = True
                    peer_outcomes[name] = _outcome(
                        mask, truth, verdict=None, wall_s=float(got.get("wall_s", 0.0))
                    )
                else:
                    peer_outcomes[name] = str(got.get("error", "no result"))
        n_sources = int(table[list(source_cols)].drop_duplicates().shape[0]) if source_cols else 0
        return CaseResult(
            case=case,
            rows=len(table),
            features=len(meta.features),
            sources=n_sources,
            variant=meta.variant,
            rate=rate,
            actual_rate=actual,
            truth_sources=truth_sources,
            ours=_ours(alone, truth),
            ours_trusted=_ours(trusted, truth),
            peers=peer_outcomes,
            details=details,
        )
    except Exception as exc:  # recorded per case: the run goes on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CaseResult(
            case=case,
            error=f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"[:500],
        )


def run_cases(
    cases: Iterable[Case],
    *,
    workers: int = 2,
    peers: Peers | None = None,
    progress: Callable[[CaseResult, int, int], None] | None = None,
) -> list[CaseResult]:
    """Run ``cases`` in ``workers`` processes (1: in this one), results in the cases' order."""
    todo = list(cases)
    results: list[CaseResult | None] = [None] * len(todo)
    if workers <= 1:
        for i, case in enumerate(todo):
            results[i] = run_case(case, peers)
            if progress is not None:
                progress(results[i] or CaseResult(case), i + 1, len(todo))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(run_case, case, peers): i for i, case in enumerate(todo)}
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                try:
                    results[i] = future.result()
                except Exception as exc:  # a dead worker is one case's error
                    results[i] = CaseResult(case=todo[i], error=f"worker: {exc!r}"[:500])
                if progress is not None:
                    progress(results[i] or CaseResult(todo[i]), done, len(todo))
    return [
        r if r is not None else CaseResult(todo[i], error="not run") for i, r in enumerate(results)
    ]


def timed_audit(table: pd.DataFrame, label: str, source_cols: tuple[str, ...]) -> float:
    """Wall seconds of one audit of ``table`` (the time goal)."""
    start = time.perf_counter()
    audit(table, label=label, source_cols=source_cols)
    return time.perf_counter() - start


__all__ = ["CaseResult", "Outcome", "Peers", "run_case", "run_cases", "score", "timed_audit"]
