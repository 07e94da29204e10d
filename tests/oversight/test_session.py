"""Runs under oversight on cologne1 (one junction): commands, stops, the monitor, drills, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cityx.oversight import (
    Action,
    CommandQueue,
    OperatorCommand,
    OversightResult,
    OversightSpec,
    StopState,
    run_drill,
    run_oversight,
    verify_decisions,
)

from ..support.cli import cityx
from ..worlds.traffic.conftest import needs_resco, needs_sumo

TLS = "GS_cluster_357187_359543"
EXAMPLE = Path(__file__).parents[2] / "examples" / "oversight" / "operator.toml"


def _run(tmp_path: Path, *commands: OperatorCommand, **kw: Any) -> OversightResult:
    needs_sumo()
    needs_resco()
    queue = CommandQueue()
    queue.extend(commands)
    inject = kw.pop("inject", None)
    spec = OversightSpec("cologne1", seconds=kw.pop("seconds", 60), seed=2, out=tmp_path, **kw)
    return run_oversight(spec, commands=queue, inject=inject)


def test_commands_take_effect_safely_and_bad_ones_are_refused(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        OperatorCommand(TLS, Action.HOLD, at_s=8, reason="watch"),
        OperatorCommand(TLS, Action.PHASE, at_s=20, phase=4),
        OperatorCommand(TLS, Action.PHASE, at_s=21, phase=1),  # a yellow phase
        OperatorCommand(TLS, Action.PHASE, at_s=22, phase=99),
        OperatorCommand("nowhere", Action.HOLD, at_s=23),
        OperatorCommand("*", Action.STOP, at_s=30),
        OperatorCommand(TLS, Action.HOLD, at_s=31),  # stopped: resume first
        OperatorCommand(TLS, Action.RESUME, at_s=45),
        OperatorCommand(TLS, Action.HOLD, at_s=500),  # after the end
    )
    rows = [c.to_json() for c in result.commands]
    by = {(r["id"]): r for r in rows}
    assert by[1]["state"] == "effective" and by[1]["effective_at_s"] == 9.0
    assert by[2]["state"] == "effective" and 21.0 <= by[2]["effective_at_s"] <= 21.0 + 5 + 5
    assert [by[k]["reason_code"] for k in (3, 4, 5, 7, 9)] == [
        "not_green",
        "unknown_phase",
        "unknown_intersection",
        "stopped",
        "after_end",
    ]
    stop = by[6]
    # All-red within the clearance: at most the minimum green owed, the yellow and the all-red.
    assert stop["state"] == "effective" and stop["effective_at_s"] - 30 <= 5 + 5 + 1
    assert by[8]["state"] == "effective"
    assert result.monitor.ok and result.complete
    assert result.modes == {TLS: "adaptive"}
    assert verify_decisions(result.out, run=result.run_id).ok
    obj = result.to_json()
    assert obj["oversight"]["violations"] == {"min_green": 0, "intergreen": 0, "conflict": 0}
    assert [r["point"] for r in obj["oversight"]["art14"]] == [f"14(4)({x})" for x in "abcde"]


def test_a_flashing_stop_state_flashes(tmp_path: Path) -> None:
    shown: list[str] = []

    def watch(sim: Any, elapsed: float) -> None:
        shown.append(sim.trafficlight.getRedYellowGreenState(TLS))

    result = _run(
        tmp_path,
        OperatorCommand(TLS, Action.STOP, at_s=10),
        stop_state=StopState.FLASHING,
        seconds=30,
        inject=watch,
    )
    assert result.modes == {TLS: "stopped"} and result.monitor.ok
    assert shown[-1] == "o" * 20


def test_an_envelope_bypass_makes_the_run_incomplete(tmp_path: Path) -> None:
    def all_green(sim: Any, elapsed: float) -> None:
        if elapsed == 20:
            sim.trafficlight.setRedYellowGreenState(TLS, "G" * 20)

    result = _run(tmp_path, seconds=30, inject=all_green)
    assert not result.complete and result.monitor.conflict >= 1
    assert any(a.kind == "monitor.violation" for a in result.alerts)
    assert result.decision_records.get("violation", 0) >= 1


def test_the_drill_alerts_falls_back_and_stops_without_violations(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    outcome = run_drill(
        OversightSpec("cologne1", seconds=130, seed=1, out=tmp_path),
        attack="world.phantom-queue",
        attack_start_s=40,
        stop_at_s=110,
    )
    assert outcome.passed, outcome.measures()
    assert outcome.time_to_alert_s is not None and outcome.time_to_alert_s <= 30
    assert outcome.time_to_fallback_s == 1.0
    assert outcome.alerts_before_attack == 0
    assert all(r["status"] == "shown" for r in outcome.to_json()["art14"])


def test_cli_run_json_contract_and_verify(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    out = tmp_path / "run"
    run = cityx(
        *("oversee", "run", "--scenario", "cologne1", "--seconds", "60", "--out", out),
        *("--operator", EXAMPLE, "--json", "--in-process"),
    )
    assert run.code == 0, run.err
    o = run.json()["oversight"]
    assert {"commands", "violations", "alerts", "decisions"} <= set(o)
    assert set(o["commands"][0]) >= {
        "at_s",
        "intersection",
        "action",
        "accepted",
        "reason_code",
        "effective_at_s",
    }
    assert all(c["state"] == "effective" for c in o["commands"])
    ok = cityx("decisions", "verify", out, "--json")
    assert ok.code == 0 and set(ok.json()) >= {"ok", "entries", "sealed", "first_bad", "reason"}
    log = out / "decisions.jsonl"
    rows = log.read_text().splitlines()
    row = json.loads(rows[5])
    row["payload"]["tampered"] = 1
    rows[5] = json.dumps(row)
    log.write_text("\n".join(rows) + "\n")
    bad = cityx("decisions", "verify", out, "--json")
    assert bad.code == 3 and bad.json()["first_bad"] == 6
    shown = cityx("decisions", "show", out, "--kind", "command")
    assert shown.code == 0 and "command" in shown.out


def test_a_city_key_seals_and_its_trust_document_anchors(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    keys = tmp_path / "keys"
    assert cityx("interop", "keygen", "--issuer", "urn:cityx:city:c", "--out", keys).code == 0
    (key,) = keys.glob("*.key.jwk")
    out = tmp_path / "run"
    run = cityx(
        "oversee",
        "run",
        "--scenario",
        "cologne1",
        "--seconds",
        "20",
        "--sign-key",
        key,
        "--out",
        out,
        "--in-process",
    )
    assert run.code == 0, run.err
    ok = cityx("decisions", "verify", out, "--trust", keys, "--json")
    assert ok.code == 0 and ok.json()["key_anchored"] is True
    other = tmp_path / "other"
    assert cityx("interop", "keygen", "--issuer", "urn:cityx:city:x", "--out", other).code == 0
    bad = cityx("decisions", "verify", out, "--trust", other, "--json")
    assert bad.code == 3 and not bad.json()["ok"]


@pytest.mark.parametrize(
    "argv",
    [
        ["oversee", "run"],
        ["oversee", "drill"],
        ["oversee", "replay"],
        ["decisions", "verify"],
        ["decisions", "show"],
    ],
)
def test_help_has_an_example(argv: list[str]) -> None:
    run = cityx(*argv, "--help")
    assert run.code == 0 and "example:\n  cityx " in run.out


def test_a_typo_in_the_operator_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "op.toml"
    bad.write_text('[[command]]\nat_s = 1\nintersection = "x"\naction = "stopp"\n')
    run = cityx("oversee", "run", "--scenario", "cologne1", "--operator", bad)
    assert run.code == 2 and "unknown action" in run.err and str(bad) in run.err


def test_alarm_actions_are_logged_and_the_operator_resumes_with_hysteresis(
    tmp_path: Path,
) -> None:
    needs_sumo()
    needs_resco()
    from cityx.oversight import FallbackOnAlert

    queue = CommandQueue()
    queue.shelve("ai.low_margin", TLS, 30.0)
    queue.acknowledge(1)
    spec = OversightSpec(
        "cologne1",
        seconds=200,
        seed=1,
        out=tmp_path,
        hooks=(("attack:world.phantom-queue", {"intensity": 1.0, "share": 0.5, "start_s": 40.0}),),
    )
    operator = FallbackOnAlert(resume_after_s=20.0)
    result = run_oversight(spec, commands=queue, operator_policy=operator)
    log = (tmp_path / "decisions.jsonl").read_text()
    assert '"shelved":"ai.low_margin"' in log.replace(" ", "")
    actions = [c.command.action for c in result.commands]
    assert Action.FIXED_TIME in actions
    assert result.monitor.ok
    # The alert cleared and stayed clear for 20 s before adaptive control came back.
    resume = next(c for c in result.commands if c.command.action is Action.RESUME)
    fallback = next(c for c in result.commands if c.command.action is Action.FIXED_TIME)
    assert resume.accepted_at_s is not None and fallback.accepted_at_s is not None
    assert resume.accepted_at_s - fallback.accepted_at_s >= 20.0


def test_a_replay_with_the_logged_commands_makes_the_same_choices(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    out = tmp_path / "run"
    assert (
        cityx(
            "oversee",
            "run",
            "--scenario",
            "cologne1",
            "--seconds",
            "40",
            "--operator",
            EXAMPLE,
            "--out",
            out,
            "--in-process",
        ).code
        == 0
    )
    same = cityx("oversee", "replay", out, "--out", tmp_path / "again", "--json")
    assert same.code == 0 and same.json()["differences"] == 0 and same.json()["commands"] == 4
    # A log whose choice was rewritten no longer matches what the controller does.
    log = out / "decisions.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines()]
    choice = next(r for r in rows if r["action"] == "choice" and r["payload"]["time_s"] > 0)
    choice["payload"]["chosen_phase"] = -1
    log.write_text("".join(json.dumps(r) + "\n" for r in rows))
    differ = cityx("oversee", "replay", out, "--out", tmp_path / "third", "--json")
    assert differ.code == 3 and differ.json()["differences"] == 1


def test_store_anchors_catch_a_log_swapped_for_another_valid_one(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    db = f"sqlite:///{tmp_path / 'c.db'}"
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        args = ("--seconds", "20", "--store", db, "--out", out, "--in-process")
        assert cityx("oversee", "run", "--scenario", "cologne1", *args).code == 0
    ok = cityx("decisions", "verify", first, "--store", db, "--json")
    assert ok.code == 0 and ok.json()["key_anchored"] is True
    # A whole, validly sealed log of another run (another per-run key) put in its place.
    for name in ("decisions.jsonl", "decisions.key.json"):
        (first / name).write_bytes((second / name).read_bytes())
    assert cityx("decisions", "verify", first, "--json").code == 0  # alone it looks fine
    bad = cityx("decisions", "verify", first, "--store", db, "--json")
    assert bad.code == 3 and "anchor" in bad.json()["reason"]


@pytest.mark.slow
def test_every_help_example_runs(tmp_path: Path) -> None:
    """The examples of --help, in order, with /tmp/ov moved into this test's folder."""
    import shlex

    needs_sumo()
    needs_resco()
    root = Path(__file__).parents[2]
    commands = [
        ["oversee", "run"],
        ["decisions", "verify"],
        ["decisions", "show"],
        ["oversee", "replay"],
        ["oversee", "drill"],
    ]
    for argv in commands:
        text = cityx(*argv, "--help").out
        example = text.split("example:\n  ", 1)[1].splitlines()[0]
        words = shlex.split(example)[1:]
        words = [w.replace("/tmp/ov", str(tmp_path / "ov")) for w in words]
        words = [str(root / w) if w.startswith("examples/") else w for w in words]
        run = cityx(*words)
        assert run.code == 0, (example, run.err)
    # prune's example names the city's key file: made here first.
    made = cityx("interop", "keygen", "--issuer", "urn:cityx:city:x", "--out", tmp_path / "keys")
    assert made.code == 0, made.err
    key = str(next((tmp_path / "keys").glob("*.key.jwk")))
    example = cityx("decisions", "prune", "--help").out.split("example:\n  ", 1)[1].splitlines()[0]
    words = [w.replace("/tmp/ov", str(tmp_path / "ov")) for w in shlex.split(example)[1:]]
    run = cityx(*[key if w.startswith("keys/") else w for w in words])
    assert run.code == 0 and "nothing pruned" in run.out, (example, run.err)


def test_a_failing_controller_falls_back_to_the_plan_but_a_manual_hold_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityx.worlds.traffic.controllers import MaxPressure

    calls = {"n": 0}
    act = MaxPressure.act

    def flaky(self: MaxPressure, observation: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 15:
            raise ValueError("model server unreachable")
        return act(self, observation)

    monkeypatch.setattr(MaxPressure, "act", flaky)
    result = _run(tmp_path, seconds=30)
    assert result.modes == {TLS: "fixed-time"} and result.complete
    failed = [a for a in result.alerts if a.kind == "ai.failed"]
    assert failed and "unreachable" in failed[0].message and failed[0].time_s == 15.0
    calls["n"] = 0  # again, with an operator holding the junction from 2 s
    held = _run(tmp_path / "held", OperatorCommand(TLS, Action.HOLD, at_s=2), seconds=30)
    assert held.modes == {TLS: "manual"}
    assert [a.time_s for a in held.alerts if a.kind == "ai.failed"] == [15.0]


def test_a_killed_run_leaves_its_log_sealed_up_to_the_last_checkpoint(tmp_path: Path) -> None:
    needs_sumo()
    needs_resco()
    out = tmp_path / "run"
    run = cityx(
        *("oversee", "run", "--scenario", "cologne1", "--seconds", "20000", "--out", out),
        *("--checkpoint-every", "50", "--timeout", "4", "--json"),
    )
    assert run.code == 1
    obj = run.json()
    assert obj["complete"] is False and obj["crashed"].startswith("killed")
    check = obj["decisions"]
    assert check is not None and not check["ok"] and check["sealed"] >= 51
    assert "unsealed after checkpoint" in check["reason"]
