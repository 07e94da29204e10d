"""Scaffolding a new submission folder with a commented ``cityx.toml``.

The scaffold's values are *placeholders*: they make a manifest that
parses, so a vendor can validate early, but :mod:`.completeness` keeps a
gate from passing while any is left. A controller's template declares
every feature of its observation contract (``phase-candidates/v1``) with
the contract's units and bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cityx.core import MANIFEST_FILE, InputError, SystemKind
from cityx.worlds.traffic.candidates import CONTRACT, FEATURES

# The scaffold's placeholder values: :mod:`.completeness` refuses a gate ``pass`` while any
# is left in the manifest.
PLACEHOLDER_VENDOR = "Your Company Ltd"
PLACEHOLDER_CONTACT = "ai-team@example.com"
PLACEHOLDER_USE = {
    SystemKind.PREDICTOR: "Describe what the system predicts, for whom, where and how its "
    "output is used.",
    SystemKind.CONTROLLER: "Describe what the controller decides, at which intersections, "
    "under whose supervision, and what it replaces.",
}
PLACEHOLDERS: Mapping[str, tuple[str, ...]] = {
    "vendor": (PLACEHOLDER_VENDOR,),
    "contact": (PLACEHOLDER_CONTACT,),
    "intended_use": tuple(PLACEHOLDER_USE.values()),
}

_HEAD = """\
# CityXchange submission manifest. Schema: cityx/schemas/submission-manifest.v2.json
# Check it with: cityx submission validate {folder}
schema_version = 2

[system]
id = "{system_id}"                 # lowercase letters, digits, '.', '_', '-'
vendor = "{vendor}"
version = "0.1.0"
kind = "{kind}"
intended_use = "{use}"
contact = "{contact}"

[artifact]
path = "model.onnx"                # onnx | skops | lightgbm | entrypoint | pickle (opt-in only)
format = "onnx"
sha256 = "{zeros}"  # sha256sum model.onnx
"""

_PREDICTOR = """
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

# Whom could the predictions treat unequally? Name the holdout data's sensitive columns
# (read beside the model's inputs, never given to it), or say why there are none:
#   not_applicable = "why no group of people or places can be treated unequally"
[fairness]
sensitive = ["district"]

# Your own stated figures; the report sets them beside what the trial measured.
[claims]
# macro_f1 = 0.80
"""

_CONTROLLER_HEAD = """
# The model scores phase candidates: one row per intersection and green phase, built by
# the sandbox under the observation contract below; each intersection shows its
# best-scoring phase. Declare the contract's features your model reads, in its column
# order, with the contract's units and bounds (cityx submission validate checks them).
[controller]
observation = "{contract}"
score_label = "yes"                # for a classifier: the label whose score ranks phases
"""

_CONTROLLER_TAIL = """
[outputs]
task = "classification"            # classification (ranked by score_label) | regression
labels = ["no", "yes"]
label_column = "chosen"            # 1 where the phase was the one to show

[data]
# training = "data/train.csv"      # optional: demonstrations the model learnt from
datasheet = "datasheet.md"

# Your own stated figures; the report sets them beside what the trial measured.
[claims]
# scenarios = ["cologne3"]
"""

# The scaffold's datasheet: each heading's questions, which a filled datasheet answers.
DATASHEET_QUESTIONS: Mapping[str, tuple[str, ...]] = {
    "Motivation": ("Why was the data collected, by whom, and who funded it?",),
    "Composition": (
        "What does a row represent? How many rows, which columns, what label balance?",
        "Are there sensitive attributes (districts, vehicle classes)?",
    ),
    "Collection process": (
        "Which sensors, where, when, at what sampling interval? How were labels made?",
    ),
    "Preprocessing": ("Cleaning, imputation, filtering, resampling.",),
    "Uses": ("What the data must not be used for.",),
    "Distribution and maintenance": (
        "Who maintains it, how errors are reported, how versions are kept.",
    ),
}

_DATASHEET_HEAD = """\
# Datasheet: {system_id}

Answer each heading; reviewers read this before the trial report.
"""


def _datasheet(system_id: str) -> str:
    parts = [_DATASHEET_HEAD.format(system_id=system_id)]
    for heading, questions in DATASHEET_QUESTIONS.items():
        parts.append(f"\n## {heading}\n" + "".join(f"{q}\n" for q in questions))
    return "".join(parts)


def _controller_features() -> str:
    return "".join(
        f"""
[[inputs.features]]
name = "{f.name}"
type = "float"
unit = "{f.unit}"
min = {f.min:g}
max = {f.max:g}
description = "{f.description}"
"""
        for f in FEATURES
    )


def manifest_template(folder: Path, *, kind: SystemKind, system_id: str) -> str:
    """The commented ``cityx.toml`` that :func:`scaffold_submission` writes."""
    head = _HEAD.format(
        folder=folder,
        system_id=system_id,
        vendor=PLACEHOLDER_VENDOR,
        kind=kind.value,
        use=PLACEHOLDER_USE[kind],
        contact=PLACEHOLDER_CONTACT,
        zeros="0" * 64,
    )
    if kind is SystemKind.PREDICTOR:
        return head + _PREDICTOR
    return (
        head
        + _CONTROLLER_HEAD.format(contract=CONTRACT)
        + _controller_features()
        + _CONTROLLER_TAIL
    )


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
    text = manifest_template(folder, kind=kind, system_id=system_id)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    written = [manifest, folder / "datasheet.md"]
    manifest.write_text(text, encoding="utf-8")
    if not written[1].exists():
        written[1].write_text(_datasheet(system_id), encoding="utf-8")
    return written
