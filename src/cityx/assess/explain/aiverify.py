"""The ``explain.fidelity`` result in AI Verify's SHAP-toolbox result format.

AI Verify's SHAP toolbox (``aiverify.stock.shap-toolbox``, test ``shap_toolbox``)
writes ``feature_names`` and ``results``: ``global`` (mean |SHAP value| per
class and feature, over ``global_samples``), ``global_shap_values`` (per class,
one row of values per sample), and a *local* explanation of one row
(``single_shap_values`` with ``single_explainer_values``, the base values).
Ours fill the same fields from the check's details: the global view per
class; the example rows as the samples, with the values of the class each
row's decision is (the class they explain); the first example as the local
row. A companion file says how ours differ: exact on the artifact's margin
where the toolbox estimates hard labels with KernelExplainer.
"""

from __future__ import annotations

from typing import Any

from cityx.core import TrialResults
from cityx.governance import AIVerifyResult, file_uri

from .details import ExplainDetails

SHAP_GID = "aiverify.stock.shap-toolbox"
SHAP_CID = "shap_toolbox"
SHAP_VERSION = "2.0.0"
NOTE_FILE = "cityx-explanation-note.json"


def explain_aiverify_result(details: ExplainDetails, trial: TrialResults) -> AIVerifyResult:
    features = list(details.features)
    classes = list(details.mean_abs)
    examples = [e for e in details.examples if e.get("contributions")]
    rows = [[float(e["contributions"].get(f, 0.0)) for f in features] for e in examples]
    samples = [[float(v) for v in e.get("values", [])] for e in examples]
    first = rows[:1]
    output: dict[str, Any] = {
        "feature_names": features,
        "results": {
            "num_global_classes": len(classes),
            "global": [[float(details.mean_abs[c].get(f, 0.0)) for f in features] for c in classes],
            "global_shap_values": [rows],
            "global_samples": samples,
            "num_local_classes": 1,
            "local": [first],
            "single_explainer_values": [float(examples[0]["base_value"])] if examples else [],
            "single_shap_values": first,
        },
    }
    holdout = (trial.data or {}).get("holdout")
    dataset = file_uri(holdout.path if holdout is not None else None)
    return AIVerifyResult(
        gid=SHAP_GID,
        cid=SHAP_CID,
        version=SHAP_VERSION,
        arguments={
            "testDataset": dataset,
            "mode": "upload",
            "modelType": "classification" if classes != ["value"] else "regression",
            "groundTruthDataset": dataset,
            "algorithmArgs": {
                "explain_type": "global",
                "background_samples": details.background_rows,
                "data_samples": len(examples),
            },
            "modelFile": file_uri(trial.submission.path if trial.submission else None),
        },
        output=output,
        companions={
            NOTE_FILE: {
                "method": details.method,
                "exact": details.exact,
                "output": details.output,
                "fidelity": dict(details.fidelity),
                "note": "cityx explains the submitted artifact itself: exactly on its margin "
                "(interventional TreeSHAP or the linear closed form) where it is a tree "
                "ensemble or a linear model, against a background of holdout rows; the "
                "toolbox runs KernelExplainer on hard labels. global_shap_values holds the "
                "example rows, each with the values of the class its decision is.",
                "trial_id": trial.trial_id,
            }
        },
    )


__all__ = ["SHAP_CID", "SHAP_GID", "explain_aiverify_result"]
