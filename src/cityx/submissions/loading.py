"""Loading a submission's model once, before anything relies on it.

A *load check* starts the model in its isolated worker
(:mod:`cityx.targets`) and calls it once on a few *schema-valid rows*:
rows drawn (seeded) within every feature's declared bounds, the first at
every minimum and the second at every maximum. A 0-byte or corrupt
artifact, one that hangs or crashes, or one whose answers break the
declared outputs (a wrong label, NaN, the wrong number of answers) is a
problem here, not a misleading finding later: ``cityx submission
validate --load`` runs it. The admission of ``cityx trial`` loads without
the call: a model that loads but misbehaves is what the trial's checks
measure, and they report it as findings.

*Trusted code*: a Python entry point runs the vendor's code to load, so it
loads only with ``trust_code`` (``--trust-code``), as a pickle needs
``trust_pickle`` (``--trust-pickle``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityx.core import (
    MANIFEST_FILE,
    FeatureType,
    FloatArray,
    InputSchema,
    Manifest,
    PluginKind,
    Problem,
    Registry,
    SystemKind,
    TargetError,
    stream,
)
from cityx.targets import DEFAULT_LIMITS, Limits, open_predictor, open_scorer

LOAD_ROWS = 8
_WIDTH = 100.0  # how far past a declared bound an open-ended feature's rows reach


def needs_code_trust(manifest: Manifest) -> bool:
    """Whether loading this submission's artifact runs the vendor's code as such (an entry
    point; pickles have their own opt-in, checked in the worker)."""
    target = Registry().load(PluginKind.TARGET, manifest.artifact.format)
    return bool(getattr(target, "runs_vendor_code", False)) and manifest.artifact.format != "pickle"


def code_trust_problem(folder: Path, manifest: Manifest, trust_code: bool) -> Problem | None:
    """The problem of loading vendor code without the user's opt-in, or None."""
    if trust_code or not needs_code_trust(manifest):
        return None
    return Problem(
        f"{Path(folder) / MANIFEST_FILE}: [artifact].format",
        f"a {manifest.artifact.format!r} artifact runs the vendor's own code when it loads; "
        "pass --trust-code to allow it (it still runs only in the isolated worker)",
    )


def schema_rows(schema: InputSchema, *, rows: int = LOAD_ROWS, seed: int = 0) -> FloatArray:
    """``rows`` rows that fit ``schema``: at every minimum, at every maximum, then seeded
    draws within the bounds (an open side reaches 100 past the other, or past 0)."""
    rng = stream(seed, "submissions", "load-rows")
    columns = []
    for f in schema.features:
        low = f.min if f.min is not None else min(0.0, (f.max or 0.0) - _WIDTH)
        high = f.max if f.max is not None else max(low, 0.0) + _WIDTH
        if f.type is FeatureType.FLOAT:
            drawn = rng.uniform(low, high, rows)
        else:
            drawn = rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, rows).astype(float)
            low, high = float(np.ceil(low)), float(np.floor(high))
        drawn[0], drawn[min(1, rows - 1)] = low, high
        columns.append(drawn)
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)


def load_problems(
    folder: Path,
    manifest: Manifest,
    *,
    limits: Limits = DEFAULT_LIMITS,
    trust_pickle: bool = False,
    trust_code: bool = False,
    plugins_allow: tuple[str, ...] | None = None,
    call: bool = True,
) -> list[Problem]:
    """Load the model in its isolated worker and, with ``call``, call it on
    :func:`schema_rows`; the problems (none when it loaded and answered as declared).

    A trial's admission loads without calling: how a model that loads behaves (crashes,
    NaN, wrong answers) is what its checks measure and report as findings.
    """
    where = f"{Path(folder) / MANIFEST_FILE}: [artifact]"
    refused = code_trust_problem(folder, manifest, trust_code)
    if refused is not None:
        return [refused]
    batch = schema_rows(manifest.input_schema())
    try:
        if manifest.system.kind is SystemKind.CONTROLLER:
            with open_scorer(
                manifest,
                folder,
                limits=limits,
                trust_pickle=trust_pickle,
                plugins_allow=plugins_allow,
            ) as scorer:
                scores = scorer.score(batch) if call else np.zeros(batch.shape[0])
            if scores.shape != (batch.shape[0],) or not np.isfinite(scores).all():
                return [
                    Problem(
                        where,
                        f"the model scored {batch.shape[0]} phase candidates with "
                        f"{scores.size} values, {int((~np.isfinite(scores)).sum())} of them "
                        "not finite; a controller must give one finite score per candidate",
                    )
                ]
        else:
            with open_predictor(
                manifest,
                folder,
                limits=limits,
                trust_pickle=trust_pickle,
                plugins_allow=plugins_allow,
            ) as predictor:
                if call:
                    predictor.predict(batch)
    except TargetError as exc:
        did = "load and answer" if call else "load"
        return [Problem(where, f"the model did not {did}: {exc}")]
    return []


__all__ = ["LOAD_ROWS", "code_trust_problem", "load_problems", "needs_code_trust", "schema_rows"]
