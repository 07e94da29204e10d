"""A poisoning drill: the red team poisons a copy of a submission's training data.

The copy (submission folder, with its training file replaced by the
poisoned one) and the truth naming the poisoned rows go into ``out``; a
trial of the copy under :data:`DRILL_POLICY` then shows whether the
``poisoning.audit`` check finds the poison, and what sanitising does to a
model trained on it. The vendor's own files are never touched.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cityx.attacks.poisoning import Backdoor
from cityx.core import InputError
from cityx.data import read_table
from cityx.submissions.manifest_file import read_manifest

# Admission and the poisoning audit only: the drill is about the training data.
DRILL_POLICY = """\
schema_version = 1
id = "cityx.poisoning-drill"
version = "1"
title = "Poisoning drill: the training data's audit only"

[gate]
fail_at = "high"
conditional_at = "medium"

[checks."admission"]

[checks."poisoning.audit"]
options = { source_columns = ["intersection", "approach"] }
compromised_sources = { fail_above = 0 }
flagged_share = { fail_above = 0.10, conditional_above = 0.04 }
"""


@dataclass(frozen=True, slots=True)
class Drill:
    submission: Path  # the poisoned copy
    policy: Path
    truth: Path  # JSON: which rows of the training file are poisoned
    poisoned: np.ndarray  # the same, as a mask over the training rows
    attack: str
    rate: float


def poisoning_drill(submission: Path, out: Path, *, rate: float = 0.05, seed: int = 1) -> Drill:
    """Copy ``submission`` into ``out`` with a backdoor in ``rate`` of its training rows."""
    manifest, problems = read_manifest(submission)
    if manifest is None:
        raise InputError(f"{problems[0]}", where=str(submission))
    if manifest.data.training is None:
        raise InputError("the submission names no training data to poison", where=str(submission))
    copy = out / "submission"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(submission, copy)
    training = copy / str(manifest.data.training)
    table = read_table(training)
    sources = [c for c in ("intersection", "approach") if c in table.columns]
    result = Backdoor().poison(
        table,
        label=manifest.outputs.label_column,
        source_cols=sources,
        params={"rate": rate},
        seed=seed,
    )
    if training.suffix.lower() in {".parquet", ".pq"}:
        result.table.to_parquet(training, index=False)
    else:
        result.table.to_csv(training, index=False)
    truth = out / "truth.json"
    truth.write_text(json.dumps(result.truth_json(), indent=1) + "\n", encoding="utf-8")
    policy = out / "drill-policy.toml"
    policy.write_text(DRILL_POLICY, encoding="utf-8")
    return Drill(copy, policy, truth, result.truth, result.attack, rate)
