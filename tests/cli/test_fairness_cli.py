"""``cityx fairness``, ``cityx aiverify export`` and ``cityx checklist``, in process.

The example submission's holdout data has a ``district`` column; the tests
derive a second sensitive column, ``band`` (``peak`` for the runs at demand 3
or more, else ``offpeak``), from its ``demand`` column.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ..support.cli import cityx
from ..support.paths import SUBMISSIONS

EXAMPLE = SUBMISSIONS / "metro-congestion"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    df = pd.read_csv(EXAMPLE / "data" / "holdout.csv")
    df["band"] = df["demand"].ge(3).map({True: "peak", False: "offpeak"})
    df["city"] = "metro"
    path = tmp_path_factory.mktemp("fair") / "holdout.csv"
    df.to_csv(path, index=False)
    return path


def test_predictor_fairness_json_contract(data: Path) -> None:
    run = cityx(
        "fairness", "--model", str(EXAMPLE), "--data", str(data), "--label", "congestion_next",
        "--sensitive", "district,band", "--positive", "heavy", "--bootstrap", "200",
        "--seed", "3", "--json",
    )  # fmt: skip
    assert run.code == 0
    assert run.out.count("\n") == 1
    obj = run.json()
    assert {"groups", "ratios", "differences", "warnings"} <= set(obj)
    assert "SE|offpeak" in obj["groups"] and "NW|peak" in obj["groups"]
    row = obj["groups"]["SE|peak"]
    for key in ("n", "tpr", "tnr", "ppv", "npv", "fpr", "fnr", "fdr", "for", "selection_rate",
                "accuracy"):  # fmt: skip
        assert key in row
    assert sum(g["n"] for g in obj["groups"].values()) == 2016
    assert obj["positive"] == "heavy" and "auc" in row  # the model gives scores
    assert 0 <= obj["summary"]["disparate_impact"] <= 1
    lo, hi = obj["intervals"]["disparate_impact"]
    assert lo <= obj["summary"]["disparate_impact"] <= hi


def test_bare_onnx_model_file_needs_only_its_features(data: Path) -> None:
    features = (
        "lanes,flow_veh_h,occupancy_pct,area_occupancy_pct,mean_speed_kmh,free_flow_kmh,"
        "speed_ratio,halting_veh,max_jam_m,delay_s"
    )
    run = cityx(
        "fairness", "--model", str(EXAMPLE / "model.onnx"), "--data", str(data),
        "--label", "congestion_next", "--sensitive", "district", "--positive", "heavy",
        "--features", features, "--json",
    )  # fmt: skip
    assert run.code == 0, run.err
    bare = run.json()
    run = cityx(
        "fairness", "--model", str(EXAMPLE), "--data", str(data), "--label", "congestion_next",
        "--sensitive", "district", "--positive", "heavy", "--json",
    )  # fmt: skip
    assert run.json()["groups"] == bare["groups"]


def test_text_output_says_undefined_not_zero(tmp_path: Path, data: Path) -> None:
    df = pd.read_csv(data)
    # A group with no true "heavy" rows: its TPR is undefined.
    df.loc[df["district"] == "NE", "congestion_next"] = "free"
    path = tmp_path / "no-heavy.csv"
    df.to_csv(path, index=False)
    run = cityx(
        "fairness", "--model", str(EXAMPLE), "--data", str(path), "--label", "congestion_next",
        "--sensitive", "district", "--positive", "heavy",
    )  # fmt: skip
    assert run.code == 0
    north_east = next(line for line in run.out.splitlines() if line.startswith("NE"))
    assert north_east.split()[2] == "undefined"
    assert "warning: group 'NE' has no true 'heavy' rows" in run.out


@pytest.mark.parametrize(
    ("sensitive", "message"),
    [
        ("distrct", "sensitive column 'distrct' is missing (did you mean 'district'?)"),
        ("city", "sensitive column 'city' is constant ('metro')"),
    ],
)
def test_bad_sensitive_columns_are_one_line_input_errors(
    data: Path, sensitive: str, message: str
) -> None:
    run = cityx(
        "fairness", "--model", str(EXAMPLE), "--data", str(data), "--label", "congestion_next",
        "--sensitive", sensitive, "--positive", "heavy",
    )  # fmt: skip
    assert run.code == 2
    assert run.err.count("\n") == 1 and message in run.err


def test_unknown_positive_label_and_missing_options(data: Path) -> None:
    run = cityx(
        "fairness", "--model", str(EXAMPLE), "--data", str(data), "--label", "congestion_next",
        "--sensitive", "district", "--positive", "jammed",
    )  # fmt: skip
    assert run.code == 2 and "positive label 'jammed' is not one of the model's labels" in run.err
    run = cityx("fairness", "--data", str(data))
    assert run.code == 2 and "missing --model, --sensitive" in run.err


@pytest.mark.parametrize(
    "command",
    [["fairness"], ["aiverify", "export"], ["checklist", "export"], ["checklist", "import"]],
)
def test_help_has_an_example(command: list[str]) -> None:
    run = cityx(*command, "--help")
    assert run.code == 0 and "example:\n  cityx " in run.out


@pytest.mark.slow
def test_trial_then_aiverify_export_and_checklist_round_trip(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    shutil.copytree(EXAMPLE, sub)  # its manifest names district as sensitive
    run = cityx(
        "trial", str(sub), "--out", str(tmp_path / "trial"), "--store",
        f"sqlite:///{tmp_path / 'store.db'}", "--json",
    )  # fmt: skip
    assert run.code in (0, 3), run.err
    results = json.loads((tmp_path / "trial" / "results.json").read_text())
    check = next(c for c in results["checks"] if c["id"] == "fairness.groups")
    # Heavy jams in some quadrants of the grid are missed more often than in others:
    # equal opportunity for "heavy" below the default policy's 0.8. Its interval reaches
    # past the next severity class, so the check is undetermined rather than failed.
    assert check["status"] in ("failed", "undetermined")
    ids = {f["id"] for f in results["findings"]}
    assert "fairness.groups/equal_opportunity_ratio[heavy]" in ids
    assert results["principles"]["fairness"]["status"] in ("attention", "fail")

    run = cityx(
        "aiverify", "export", str(tmp_path / "trial"), "--out", str(tmp_path / "aiv"),
        "--json",
    )  # fmt: skip
    assert run.code == 0
    files = {Path(p).name for p in run.json()["files"]}
    assert "fairness_metrics_toolbox_for_classification.json" in files
    exported = json.loads(
        (tmp_path / "aiv" / "fairness_metrics_toolbox_for_classification.json").read_text()
    )
    heavy = exported["output"]["results"][exported["output"]["output_classes"].index("heavy")]
    tpr = {tuple(e["group"]): e["metric"] for e in heavy["True Positive Rate"]}
    ours = check["details"]["by_label"]["heavy"]["groups"]
    assert tpr[("NW",)] == pytest.approx(ours["NW"]["tpr"], abs=1e-12)

    xlsx = tmp_path / "checklist.xlsx"
    run = cityx(
        "checklist", "export", "--trial", str(tmp_path / "trial"), "--out", str(xlsx),
        "--json",
    )  # fmt: skip
    assert run.code == 0 and run.json()["answered_from_trial"] >= 8
    run = cityx("checklist", "import", str(xlsx), "--json")
    assert run.code == 0
    # A failed check answers "within limits?" with no; an undetermined one leaves it open.
    expected = "not_met" if check["status"] == "failed" else "open"
    assert run.json()["principles"]["fairness"]["status"] == expected
