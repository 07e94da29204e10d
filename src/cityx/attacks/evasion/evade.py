"""``evade``: constrained evasion of a submitted predictor on a data file, end to end.

It opens the submission (its artifact's digest checked before anything
loads), checks the data against the model's input schema, takes the
submission's ``threat-model.toml`` (or one given, or the schema's bounds
alone), checks it against the data, and attacks the correctly predicted
rows through the model's isolated worker. ``cityx redteam evade`` is this
function with its result printed.
"""

from __future__ import annotations

from pathlib import Path

from cityx.core import DataError, InputError
from cityx.data import inspect_table, read_table
from cityx.data.constraints import (
    check_against_data,
    load_threat_model,
    previous_rows,
    schema_threat_model,
)
from cityx.submissions import open_submission
from cityx.targets import Limits

from .attack import ConstrainedEvasion, EvasionReport

THREAT_MODEL_FILE = "threat-model.toml"  # beside cityx.toml in a submission


def evade(
    model: str | Path,
    data: str | Path,
    *,
    label: str,
    constraints: str | Path | None = None,
    seed: int = 0,
    budget: int = 200,
    samples: int = 100,
    fragility: bool = True,
    timeout_s: float = 30.0,
    trust_code: bool = False,
) -> EvasionReport:
    """Attack the submission at ``model`` (folder, cityx.toml or artifact) on ``data``;
    ``trust_code`` lets a Python entry point run the vendor's code."""
    for name, value, low in (("budget", budget, 8), ("samples", samples, 1)):
        if value < low:
            raise InputError(f"{name} must be at least {low}, got {value}", where=name)
    submission = open_submission(Path(model))
    data = Path(data)
    manifest = submission.manifest
    schema = manifest.input_schema()
    df = read_table(data)
    found = inspect_table(df, schema, manifest.output_spec(), label, where=str(data))
    if found.errors:
        raise DataError(found.errors[0].message, where=found.errors[0].where)
    if found.features is None or found.truth is None or found.rejected is None:
        raise DataError("could not be checked against the input schema", where=str(data))
    keep = ~found.rejected
    rows, truth = found.features[keep], found.truth[keep]
    declared = submission.folder / THREAT_MODEL_FILE
    if constraints is None and declared.is_file():
        constraints = declared
    threat = (
        load_threat_model(Path(constraints), schema) if constraints else schema_threat_model(schema)
    )
    check_against_data(threat, rows, where=str(data))
    previous = previous_rows(threat, df, keep, where=str(data))
    with submission.predictor(
        limits=Limits(call_timeout_s=timeout_s), trust_code=trust_code
    ) as predictor:
        return ConstrainedEvasion().run(
            predictor,
            rows,
            truth,
            threat,
            seed=seed,
            previous=previous,
            fragility=fragility,
            budget=budget,
            samples=samples,
        )


__all__ = ["THREAT_MODEL_FILE", "evade"]
