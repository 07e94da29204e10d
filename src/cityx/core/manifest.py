"""The submission manifest, ``cityx.toml``.

A *submission* is a folder a vendor hands to the city: the manifest, the
model *artifact*, its training and holdout data and a *datasheet* (a
document describing how the data was collected). The manifest is a wire
format, so it is a pydantic model; its JSON Schema ships in the package as
``cityx/schemas/submission-manifest.v2.json``.

*Schema versions.* Version 2 adds ``[fairness]``, where the vendor either
names the *sensitive columns* group fairness is measured by
(``sensitive = [...]``) or says in writing why there are none
(``not_applicable = "why"``), and ``[claims]``, the vendor's own stated
figures (a name and a number, or a name and a list of strings, such as
``macro_f1 = 0.80`` or ``scenarios = ["cologne3"]``) that a report checks
against what was measured. Version 1 files are still read: their
``[data].sensitive`` becomes ``[fairness].sensitive``, and they have no
claims; ``cityx submission upgrade`` rewrites them as version 2.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .schema import Feature, FeatureType, InputSchema, OutputSpec, Task

MANIFEST_SCHEMA_VERSION: Literal[2] = 2
MANIFEST_FILE = "cityx.toml"

_ID = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_FORMAT = r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*$"  # a target plugin's id
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
RelPath = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class SystemKind(StrEnum):
    PREDICTOR = "predictor"
    CONTROLLER = "controller"


class ArtifactFormat(StrEnum):
    """The artifact formats cityx's own target plugins load; a target plugin may add more."""

    ONNX = "onnx"
    SKOPS = "skops"
    LIGHTGBM = "lightgbm"
    ENTRYPOINT = "entrypoint"
    PICKLE = "pickle"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class SystemSection(_Strict):
    id: Annotated[str, StringConstraints(pattern=_ID)] = Field(
        description="Stable id of the AI system: lowercase letters, digits, '.', '_', '-'."
    )
    vendor: Annotated[str, StringConstraints(min_length=1)]
    version: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    kind: SystemKind
    intended_use: Annotated[str, StringConstraints(min_length=10)] = Field(
        description="What the system is for, where and by whom it is used."
    )
    contact: Annotated[str, StringConstraints(min_length=3)]


class ArtifactSection(_Strict):
    path: RelPath = Field(description="Artifact file, relative to the submission folder.")
    format: Annotated[str, StringConstraints(pattern=_FORMAT)] = Field(
        description="The id of the target plugin that loads the artifact: onnx, skops, "
        "lightgbm, entrypoint, pickle, or one an installed plugin adds (cityx plugins)."
    )
    sha256: Sha256 = Field(description="Lowercase hex SHA-256 of the artifact file.")
    entrypoint: str | None = Field(
        default=None,
        description="For format 'entrypoint': 'module:callable' found in the artifact path "
        "(a .py file or a folder), returning an object with predict(batch).",
    )

    @model_validator(mode="after")
    def _entrypoint_only_when_needed(self) -> ArtifactSection:
        if self.format == ArtifactFormat.ENTRYPOINT:
            if not self.entrypoint or not re.match(r"^[\w.]+:[\w.]+$", self.entrypoint):
                raise ValueError("format 'entrypoint' needs entrypoint = 'module:callable'")
        elif self.entrypoint is not None:
            raise ValueError("entrypoint is only used with format = 'entrypoint'")
        return self


class ReadingRole(StrEnum):
    """What one detector reading is (the poisoning audit checks them against each other)."""

    COUNT = "count"
    OCCUPANCY = "occupancy"
    SPEED = "speed"
    QUEUE = "queue"
    SPEED_RATIO = "speed_ratio"
    FREE_FLOW = "free_flow"


class FeatureSpec(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    type: FeatureType = FeatureType.FLOAT
    unit: str = ""
    min: float | None = None
    max: float | None = None
    description: str = ""
    # What a traffic detector measured, for the poisoning audit's reading rules, where the
    # name does not say it (see docs/submissions.md): the reading's role and the detector
    # window (lane, time step) it belongs to.
    reading: ReadingRole | None = None
    group: Annotated[str, StringConstraints(max_length=128)] = ""

    @model_validator(mode="after")
    def _bounds_ordered(self) -> FeatureSpec:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.group and self.reading is None:
            raise ValueError("group is only used with reading")
        return self


class InputsSection(_Strict):
    features: list[FeatureSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> InputsSection:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate feature names: {', '.join(dupes)}")
        return self


class OutputsSection(_Strict):
    task: Task
    labels: list[str] = Field(default_factory=list)
    min: float | None = None
    max: float | None = None
    unit: str = ""
    label_column: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="The column of the training and holdout data holding the truth."
    )

    @model_validator(mode="after")
    def _task_fields(self) -> OutputsSection:
        if self.task is Task.CLASSIFICATION:
            if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
                raise ValueError("a classifier needs at least two distinct labels")
        elif self.labels:
            raise ValueError("labels are only for task = 'classification'")
        return self


class DataSection(_Strict):
    training: RelPath | None = None
    holdout: RelPath | None = None
    datasheet: RelPath


class FairnessSection(_Strict):
    """Who the system could treat unequally: sensitive columns, or why there are none."""

    sensitive: list[Annotated[str, StringConstraints(min_length=1)]] = Field(
        default_factory=list,
        description="Sensitive columns of the holdout data (district, time-of-day band, ...) "
        "that group fairness is measured by; read beside the model's inputs, not given to it.",
    )
    not_applicable: Annotated[str, StringConstraints(min_length=20)] | None = Field(
        default=None,
        description="Why no group of people or places could be treated unequally by this "
        "system, in writing (at least 20 characters); instead of sensitive.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> FairnessSection:
        if self.sensitive and self.not_applicable is not None:
            raise ValueError("give sensitive or not_applicable, not both")
        dupes = sorted({n for n in self.sensitive if self.sensitive.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate sensitive columns: {', '.join(dupes)}")
        return self

    @property
    def declared(self) -> bool:
        """Whether the vendor said anything: columns, or why there are none."""
        return bool(self.sensitive) or self.not_applicable is not None


ClaimName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*\[\]-]{1,128}$")]
# A claim is a finite number or a list of strings; strict so that TOML's true is no 1.0.
ClaimValue = Annotated[float, Field(strict=True, allow_inf_nan=False)] | list[str]


class ControllerSection(_Strict):
    """How a controller submission plugs into the sandbox.

    The model scores *phase candidates* (one row per intersection and green
    phase, see ``cityx.worlds.traffic.candidates``); each intersection asks
    for its best-scoring phase. A classifier ranks by its score for
    ``score_label``; a regressor by its value.
    """

    observation: Literal["phase-candidates/v1"] = Field(
        description="The observation contract the model's input features come from."
    )
    score_label: str | None = Field(
        default=None,
        description="For a classifier: the label whose score ranks the candidates.",
    )


class Manifest(_Strict):
    """The whole ``cityx.toml``."""

    schema_version: Literal[2] = MANIFEST_SCHEMA_VERSION
    system: SystemSection
    artifact: ArtifactSection
    inputs: InputsSection
    outputs: OutputsSection
    data: DataSection
    fairness: FairnessSection = Field(default_factory=FairnessSection)
    claims: dict[ClaimName, ClaimValue] = Field(
        default_factory=dict,
        description="The vendor's own stated figures, e.g. macro_f1 = 0.80 or "
        'scenarios = ["cologne3"]; a report sets them beside what was measured.',
    )
    controller: ControllerSection | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_v1(cls, raw: Any) -> Any:
        """A version 1 file (no schema_version means 1) read as version 2.

        The model always holds version 2, so that its dump reads back the same.
        """
        if not isinstance(raw, dict):
            return raw
        version = raw.get("schema_version", 1)
        data = raw.get("data")
        if version == 1:
            for section in ("fairness", "claims"):
                if section in raw:
                    raise ValueError(
                        f"[{section}] needs schema_version = 2 (cityx submission upgrade "
                        "rewrites a version 1 manifest)"
                    )
            upgraded = {**raw, "schema_version": 2}
            if isinstance(data, dict) and "sensitive" in data:
                upgraded["data"] = {k: v for k, v in data.items() if k != "sensitive"}
                upgraded["fairness"] = {"sensitive": data["sensitive"]}
            return upgraded
        if isinstance(data, dict) and "sensitive" in data:
            raise ValueError("[data].sensitive is [fairness].sensitive from schema_version = 2 on")
        return raw

    @model_validator(mode="after")
    def _predictor_needs_holdout(self) -> Manifest:
        if self.system.kind is SystemKind.PREDICTOR and not self.data.holdout:
            raise ValueError("a predictor submission must name holdout data in [data]")
        return self

    @model_validator(mode="after")
    def _controller_section(self) -> Manifest:
        section = self.controller
        if self.system.kind is SystemKind.CONTROLLER:
            if section is None:
                raise ValueError("a controller submission needs a [controller] section")
            if self.outputs.task is Task.CLASSIFICATION:
                if section.score_label not in self.outputs.labels:
                    raise ValueError(
                        f"[controller].score_label must be one of the labels "
                        f"{self.outputs.labels}, got {section.score_label!r}"
                    )
            elif section.score_label is not None:
                raise ValueError("[controller].score_label is only for a classifier")
        elif section is not None:
            raise ValueError("[controller] is only for kind = 'controller'")
        return self

    def input_schema(self) -> InputSchema:
        # The reading role is the audit's business, not the model's input contract.
        return InputSchema(
            tuple(
                Feature(**f.model_dump(exclude={"reading", "group"})) for f in self.inputs.features
            )
        )

    def output_spec(self) -> OutputSpec:
        o = self.outputs
        return OutputSpec(
            task=o.task, labels=tuple(o.labels), value_min=o.min, value_max=o.max, unit=o.unit
        )


def manifest_json_schema() -> dict[str, Any]:
    """The JSON Schema of ``cityx.toml`` (as parsed from TOML)."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://cityx.dev/schemas/submission-manifest.v2.json"
    schema["title"] = "CityXchange submission manifest (cityx.toml), version 2"
    return schema


__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "ArtifactFormat",
    "ArtifactSection",
    "ControllerSection",
    "DataSection",
    "FairnessSection",
    "FeatureSpec",
    "InputsSection",
    "Manifest",
    "OutputsSection",
    "ReadingRole",
    "SystemKind",
    "SystemSection",
    "manifest_json_schema",
]
