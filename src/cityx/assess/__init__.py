"""Measurements of a system under test: performance, input contract, and
(in later versions) robustness, fairness and explanations."""

from .contract import InputContract, probes
from .performance import NominalPerformance, classification_metrics, confusion_counts

__all__ = [
    "InputContract",
    "NominalPerformance",
    "classification_metrics",
    "confusion_counts",
    "probes",
]
