"""The ``fairness.groups`` check's results in AI Verify's format.

AI Verify's *Fairness Metrics Toolbox for Classification* (plugin gid
``aiverify.stock.fairness_metrics_toolbox_for_classification``, algorithm
cid ``fairness_metrics_toolbox_for_classification``) writes a *test
result* whose ``output`` holds ``sensitive_feature``, ``output_classes``
and, per output class, each metric as a list of ``{"group": [values...],
"metric": number}``. We write that output from the check's details so AI
Verify's portal can read it, with *correct definitions*:

- each group's rate divides by that group's own counts (a group's TPR is
  its true positives over its own positives);
- a rate that is undefined in a group (no positives, say) is left out of
  the list, never written as 0; the comparison file lists what was left out;
- ``Disparate Impact`` for a pair of groups (i, j) is selection rate i over
  selection rate j, and ``Equal Selection Parity`` the absolute difference
  of their selection *rates*.

AI Verify 2.x computes these differently: its per-group rates divide the
group's count by the *whole population's* (a group's "TPR" is its true
positives over all groups' positives, so group values sum to the overall
rate), it writes 0 for an undefined rate, and its equal selection parity
is a difference of *counts*. For users comparing with numbers they got
from AI Verify, ``aiverify-style-comparison.json`` puts its style of value
beside ours, clearly labelled; it is never what the portal file holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cityx.core import InputError, TrialResults
from cityx.governance import AIVerifyResult, file_uri

from .details import FairnessDetails

FMTC_GID = "aiverify.stock.fairness_metrics_toolbox_for_classification"
FMTC_CID = "fairness_metrics_toolbox_for_classification"
FMTC_VERSION = "2.0.0"
STYLE_FILE = "aiverify-style-comparison.json"

# Name in AI Verify's output -> (numerator cells, denominator cells) over tn, fp, fn, tp.
TN, FP, FN, TP = 0, 1, 2, 3
RATE_METRICS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "True Positive Rate": ((TP,), (TP, FN)),
    "True Negative Rate": ((TN,), (TN, FP)),
    "Positive Predictive Value Parity": ((TP,), (TP, FP)),
    "Negative Predictive Value Parity": ((TN,), (TN, FN)),
    "False Positive Rate": ((FP,), (TN, FP)),
    "False Negative Rate": ((FN,), (TP, FN)),
    "False Discovery Rate": ((FP,), (TP, FP)),
    "False Omission Rate": ((FN,), (TN, FN)),
}
PAIR_METRICS = ("Equal Selection Parity", "Disparate Impact")
STYLE_NOTE = (
    "aiverify_style reproduces AI Verify 2.x's Fairness Metrics Toolbox arithmetic for "
    "comparison only: its per-group rates divide by the whole population's counts (so a "
    "group's 'True Positive Rate' is its true positives over all groups' positives), undefined "
    "rates become 0, and Equal Selection Parity is a difference of counts. 'ours' uses each "
    "group's own counts and leaves undefined rates out (null)."
)


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def class_results(
    counts: NDArray[np.int64], groups: Sequence[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], list[str]]:
    """One output class's metrics from (g, 4) counts: ours, AI Verify style, and left-out keys.

    ``groups`` are names whose values for several features are joined by ``|``.
    """
    c = np.asarray(counts, dtype=np.float64)
    keys = [g.split("|") for g in groups]
    total = c.sum(axis=0)
    ours: dict[str, list[dict[str, Any]]] = {}
    style: dict[str, Any] = {}
    undefined: list[str] = []
    for name, (num_cells, den_cells) in RATE_METRICS.items():
        num = c[:, list(num_cells)].sum(axis=1)
        den = c[:, list(den_cells)].sum(axis=1)
        mine = _ratio(num, den)
        # AI Verify divides by the population's denominator and maps 0/0 to 0.
        theirs = np.nan_to_num(_ratio(num, np.full_like(num, total[list(den_cells)].sum())))
        ours[name] = [
            {"group": key, "metric": float(v)}
            for key, v in zip(keys, mine, strict=True)
            if np.isfinite(v)
        ]
        undefined += [f"{name} [{g}]" for g, v in zip(groups, mine, strict=True) if np.isnan(v)]
        style[name] = [
            {"group": key, "ours": None if np.isnan(m) else float(m), "aiverify_style": float(t)}
            for key, m, t in zip(keys, mine, theirs, strict=True)
        ]
    selected = c[:, FP] + c[:, TP]
    n = c.sum(axis=1)
    rate = _ratio(selected, n)
    i, j = np.triu_indices(len(groups), k=1)
    pair_keys = [keys[a] + keys[b] for a, b in zip(i.tolist(), j.tolist(), strict=True)]
    di = _ratio(rate[i], rate[j])
    esp = np.abs(rate[i] - rate[j])
    ours["Disparate Impact"] = [
        {"group": k, "metric": float(v)}
        for k, v in zip(pair_keys, di, strict=True)
        if np.isfinite(v)
    ]
    ours["Equal Selection Parity"] = [
        {"group": k, "metric": float(v)}
        for k, v in zip(pair_keys, esp, strict=True)
        if np.isfinite(v)
    ]
    undefined += [
        f"Disparate Impact [{'|'.join(k)}]"
        for k, v in zip(pair_keys, di, strict=True)
        if not np.isfinite(v)
    ]
    style["Disparate Impact"] = [
        {
            "group": k,
            "ours": None if np.isnan(v) else float(v),
            "aiverify_style": float(np.nan_to_num(v)),
        }
        for k, v in zip(pair_keys, di, strict=True)
    ]
    style["Equal Selection Parity"] = [
        {
            "group": k,
            "ours": None if np.isnan(v) else float(v),
            "aiverify_style": float(abs(selected[a] - selected[b])),
        }
        for k, v, a, b in zip(pair_keys, esp, i.tolist(), j.tolist(), strict=True)
    ]
    return ours, style, undefined


def fmtc_output(details: FairnessDetails) -> tuple[dict[str, Any], dict[str, Any]]:
    """The toolbox's ``output`` object and our side-by-side comparison, from check details."""
    if not details.classifier:
        raise InputError(
            "AI Verify's fairness metrics toolbox is for classifiers; this trial's model is a "
            f"{details.task}"
        )
    results, comparison, undefined = [], {}, {}
    for label in details.labels:
        ours, style, missing = class_results(np.asarray(details.counts[label]), details.groups)
        results.append(ours)
        comparison[label] = style
        if missing:
            undefined[label] = missing
    output = {
        "sensitive_feature": list(details.sensitive),
        "output_classes": list(details.labels),
        "results": results,
    }
    return output, {"note": STYLE_NOTE, "by_class": comparison, "undefined": undefined}


def fairness_aiverify_result(details: FairnessDetails, trial: TrialResults) -> AIVerifyResult:
    """The toolbox's test result for this trial, and the AI Verify-style comparison beside it."""
    output, comparison = fmtc_output(details)
    holdout = (trial.data or {}).get("holdout")
    dataset = file_uri(holdout.path if holdout is not None else None)
    return AIVerifyResult(
        gid=FMTC_GID,
        cid=FMTC_CID,
        version=FMTC_VERSION,
        arguments={
            "testDataset": dataset,
            "mode": "upload",
            "modelType": "classification",
            "groundTruthDataset": dataset,
            "groundTruth": details.label_column,
            "algorithmArgs": {"sensitive_feature": list(details.sensitive)},
            "modelFile": file_uri(trial.submission.path if trial.submission else None),
        },
        output=output,
        companions={
            STYLE_FILE: {
                "note": comparison["note"],
                "by_class": comparison["by_class"],
                "trial_id": trial.trial_id,
                "undefined_left_out": comparison["undefined"],
            }
        },
    )


__all__ = [
    "FMTC_CID",
    "FMTC_GID",
    "FMTC_VERSION",
    "STYLE_FILE",
    "class_results",
    "fairness_aiverify_result",
    "fmtc_output",
]
