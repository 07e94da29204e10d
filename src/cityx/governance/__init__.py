"""Governance: policies, the deployment gate, AI Verify principles and the report.

Checks draw their own section of the report with the view vocabulary
exported here (:class:`Table`, :class:`Plot`, :class:`Section`,
:func:`fmt_value`, :func:`fmt_metric` and the charts of :mod:`.plots`;
the contract is :class:`RendersSection`), and give their AI Verify test
result as an :class:`AIVerifyResult` (:class:`ExportsToAIVerify`).
"""

from .aiverify import AIVerifyResult, ExportsToAIVerify, file_uri
from .gate import Decision, GateDecision, decide, principle_status
from .plots import (
    PROBE_OUTCOMES,
    confusion_heatmap,
    impact_chart,
    probe_chart,
    probe_count_chart,
    probe_outcomes,
    recall_chart,
    residual_chart,
)
from .policy import CheckPolicy, Policy, default_policy_path, load_policy
from .report import Plot, RendersSection, Section, Table, fmt_metric, fmt_value

__all__ = [
    "PROBE_OUTCOMES",
    "AIVerifyResult",
    "CheckPolicy",
    "Decision",
    "ExportsToAIVerify",
    "GateDecision",
    "Plot",
    "Policy",
    "RendersSection",
    "Section",
    "Table",
    "confusion_heatmap",
    "decide",
    "default_policy_path",
    "file_uri",
    "fmt_metric",
    "fmt_value",
    "impact_chart",
    "load_policy",
    "principle_status",
    "probe_chart",
    "probe_count_chart",
    "probe_outcomes",
    "recall_chart",
    "residual_chart",
]
