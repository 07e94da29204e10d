"""Scaffolding a new submission folder with a commented ``cityx.toml``."""

from __future__ import annotations

from pathlib import Path

from cityx.core import MANIFEST_FILE, InputError, SystemKind

_PREDICTOR = """\
# CityXchange submission manifest. Schema: cityx/schemas/submission-manifest.v1.json
# Check it with: cityx submission validate {folder}
schema_version = 1

[system]
id = "{system_id}"                 # lowercase letters, digits, '.', '_', '-'
vendor = "Your Company Ltd"
version = "0.1.0"
kind = "predictor"
intended_use = "Describe what the system predicts, for whom, where and how its output is used."
contact = "ai-team@example.com"

[artifact]
path = "model.onnx"                # onnx | skops | lightgbm | entrypoint | pickle (opt-in only)
format = "onnx"
sha256 = "{zeros}"  # sha256sum model.onnx

# One [[inputs.features]] per model input column, in the model's column order.
[[inputs.features]]
name = "flow_n"
type = "int"                       # float | int | bool
unit = "veh/5min"
min = 0
max = 250
description = "Vehicles counted on the northern approach in the last 5 minutes"

[outputs]
task = "classification"            # classification | regression
labels = ["free", "moderate", "heavy"]
label_column = "congestion"        # the column of the data files holding the truth

[data]
training = "data/train.csv"        # .csv or .parquet
holdout = "data/holdout.csv"       # never seen in training: the trial scores on it
datasheet = "datasheet.md"
"""

_DATASHEET = """\
# Datasheet: {system_id}

Answer each heading; reviewers read this before the trial report.

## Motivation
Why was the data collected, by whom, and who funded it?

## Composition
What does a row represent? How many rows, which columns, what label balance?
Are there sensitive attributes (districts, vehicle classes)?

## Collection process
Which sensors, where, when, at what sampling interval? How were labels made?

## Preprocessing
Cleaning, imputation, filtering, resampling.

## Uses
What the data must not be used for.

## Distribution and maintenance
Who maintains it, how errors are reported, how versions are kept.
"""


def scaffold_submission(folder: Path, *, kind: SystemKind) -> list[Path]:
    """Write a new submission skeleton; never overwrites an existing manifest."""
    folder = Path(folder)
    manifest = folder / MANIFEST_FILE
    if manifest.exists():
        raise InputError("a manifest already exists here; nothing was written", where=str(manifest))
    if folder.exists() and not folder.is_dir():
        raise InputError("exists and is not a folder", where=str(folder))
    system_id = (
        "".join(
            c if c.isalnum() or c in "._-" else "-" for c in folder.resolve().name.lower()
        ).strip("-._")
        or "my-system"
    )
    text = _PREDICTOR.format(folder=folder, system_id=system_id, zeros="0" * 64)
    if kind is SystemKind.CONTROLLER:
        text = text.replace('kind = "predictor"', 'kind = "controller"')
    (folder / "data").mkdir(parents=True, exist_ok=True)
    written = [manifest, folder / "datasheet.md"]
    manifest.write_text(text, encoding="utf-8")
    if not written[1].exists():
        written[1].write_text(_DATASHEET.format(system_id=system_id), encoding="utf-8")
    return written
