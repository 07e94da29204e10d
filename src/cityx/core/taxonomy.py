"""Taxonomy tags that every finding carries.

- *Principle*: one of the 11 AI Verify principles (IMDA, Singapore).
- *NIST function*: the NIST AI Risk Management Framework 1.0 core function
  (Govern, Map, Measure, Manage) the finding informs.
- *ATLAS technique*: a MITRE ATLAS technique id such as ``AML.T0015``
  (Evade ML Model) or a sub-technique such as ``AML.T0043.003``.
- *EU AI Act article*: the article of Regulation (EU) 2024/1689 a finding
  bears on, written ``Art. 15``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Principle(StrEnum):
    """The 11 AI Verify principles."""

    TRANSPARENCY = "transparency"
    EXPLAINABILITY = "explainability"
    REPEATABILITY = "repeatability"
    SAFETY = "safety"
    SECURITY = "security"
    ROBUSTNESS = "robustness"
    FAIRNESS = "fairness"
    DATA_GOVERNANCE = "data_governance"
    ACCOUNTABILITY = "accountability"
    HUMAN_AGENCY = "human_agency"
    INCLUSIVE_GROWTH = "inclusive_growth"

    @property
    def display_name(self) -> str:
        return _PRINCIPLE_TITLES[self]


_PRINCIPLE_TITLES = {
    Principle.TRANSPARENCY: "Transparency",
    Principle.EXPLAINABILITY: "Explainability",
    Principle.REPEATABILITY: "Repeatability / reproducibility",
    Principle.SAFETY: "Safety",
    Principle.SECURITY: "Security",
    Principle.ROBUSTNESS: "Robustness",
    Principle.FAIRNESS: "Fairness",
    Principle.DATA_GOVERNANCE: "Data governance",
    Principle.ACCOUNTABILITY: "Accountability",
    Principle.HUMAN_AGENCY: "Human agency and oversight",
    Principle.INCLUSIVE_GROWTH: "Inclusive growth, societal and environmental well-being",
}


class NistFunction(StrEnum):
    """NIST AI RMF 1.0 core functions."""

    GOVERN = "govern"
    MAP = "map"
    MEASURE = "measure"
    MANAGE = "manage"


_ATLAS = re.compile(r"^AML\.T\d{4}(\.\d{3})?$")
_EU_ARTICLE = re.compile(r"^Art\. \d{1,3}$")

# The ATLAS techniques the built-in checks use, with their names for reports.
ATLAS_NAMES = {
    "AML.T0010": "ML Supply Chain Compromise",
    "AML.T0011": "User Execution",
    "AML.T0015": "Evade ML Model",
    "AML.T0018": "Backdoor ML Model",  # its name in the pinned ATLAS v4.7.0
    "AML.T0020": "Poison Training Data",
    "AML.T0029": "Denial of ML Service",
    "AML.T0031": "Erode ML Model Integrity",
    "AML.T0043": "Craft Adversarial Data",
}

EU_AI_ACT_ARTICLES = {
    "Art. 9": "Risk management system",
    "Art. 10": "Data and data governance",
    "Art. 11": "Technical documentation",
    "Art. 12": "Record-keeping",
    "Art. 13": "Transparency and provision of information to deployers",
    "Art. 14": "Human oversight",
    "Art. 15": "Accuracy, robustness and cybersecurity",
}


@dataclass(frozen=True, slots=True)
class Tags:
    """The taxonomy tags of a finding or a plugin."""

    principle: Principle
    nist: NistFunction = NistFunction.MEASURE
    atlas: tuple[str, ...] = ()
    eu_ai_act: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "principle", Principle(self.principle))
        object.__setattr__(self, "nist", NistFunction(self.nist))
        for technique in self.atlas:
            if not _ATLAS.match(technique):
                raise ValueError(f"not a MITRE ATLAS technique id: {technique!r}")
        for article in self.eu_ai_act:
            if not _EU_ARTICLE.match(article):
                raise ValueError(f"EU AI Act article must look like 'Art. 15', got {article!r}")

    def to_json(self) -> dict[str, object]:
        return {
            "principle": self.principle.value,
            "nist": self.nist.value,
            "atlas": list(self.atlas),
            "eu_ai_act": list(self.eu_ai_act),
        }


__all__ = ["ATLAS_NAMES", "EU_AI_ACT_ARTICLES", "NistFunction", "Principle", "Tags"]
