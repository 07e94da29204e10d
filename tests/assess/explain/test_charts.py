"""The explanation charts: dependence plots and the controller's decision timeline page."""

from __future__ import annotations

from cityx.assess.explain.charts import run_report_html, scatter_svg, timeline_svg
from cityx.assess.explain.controller import ChoiceExplanation, RunExplanation


def _choice(
    t: float, chosen: int, runner_up: int | None, margin: float, by: str
) -> ChoiceExplanation:
    return ChoiceExplanation(
        t=t,
        intersection="B1",
        chosen=chosen,
        runner_up=runner_up,
        decided_by=by,
        envelope="switched" if by == "model" else "min_green_held",
        margin=margin,
        score_margin=margin,
        contributions={"queue_in": margin},
        counterfactual=None,
        reasons=("queue_in +1",),
    )


def test_a_dependence_plot_has_one_point_per_row() -> None:
    svg = scatter_svg("halting", [0.0, 1.0, 2.5], [-0.2, 0.1, 0.4], x_label="veh", y_label="phi")
    assert svg.count("<circle") == 3 and 'fill="#b91c1c"' in svg  # the negative one is red


def test_the_timeline_marks_chosen_runner_up_and_margin() -> None:
    items = [
        _choice(0, 0, 2, 1.5, "model"),
        _choice(5, 2, 0, 0.5, "envelope"),
        _choice(10, 2, None, 0.0, "model"),
    ]
    svg = timeline_svg("B1", items, unit="log-odds")
    assert svg.count('fill="#1d4ed8"') == 3  # a chosen dot per decision
    assert svg.count('stroke="#f59e0b"') == 2  # a ring per runner-up
    assert 'fill="#9ca3af"' in svg  # the envelope's decision is grey
    assert "phase 0" in svg and "phase 2" in svg


def test_the_run_page_is_self_contained_and_thins_long_runs() -> None:
    many = tuple(_choice(float(t), t % 3, (t + 1) % 3, 1.0, "model") for t in range(2000))
    result = RunExplanation(
        controller="acme<signals>",
        method="tree-exact",
        exact=True,
        unit="log-odds",
        intersections={"B1": many},
        additivity_max_error=1e-15,
        stability=0.9,
        decisions=2000,
        wall_s=1.0,
    )
    html = run_report_html(result, {"B1": ["t=0 s: phase 0 over 1"]})
    assert html.startswith("<!doctype html>") and "<script" not in html and "http" not in html
    assert "acme&lt;signals&gt;" in html  # escaped
    assert "of 2000 shown" in html and html.count('fill="#1d4ed8"') <= 1200
