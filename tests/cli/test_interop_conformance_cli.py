"""``cityx interop conformance`` and ``cityx interop serve``, in process: argv in, exit out."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cityx.cli.interop import _CONFORMANCE_AUD
from cityx.cli.main import main
from cityx.interop import load_trust
from cityx.interop.conformance import (
    AUDIENCE,
    Answer,
    Request,
    make_issuers,
    suite_for,
    write_trust,
)
from cityx.interop.endpoint import HttpServer, MqttServer, reference_handler

from ..support.cli import cityx

CITY_SUITE = suite_for("city")  # what a run without --profile sends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def trust_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trust")
    write_trust(folder, seed=0)
    return folder


@pytest.fixture
def reference_url(trust_dir: Path) -> Iterator[str]:
    with HttpServer(reference_handler(load_trust(trust_dir), audience=AUDIENCE)) as server:
        yield server.url


def test_default_audience_is_the_suites() -> None:
    assert _CONFORMANCE_AUD == AUDIENCE


@pytest.mark.parametrize("command", ["conformance", "serve"])
def test_help_has_an_example(command: str) -> None:
    run = cityx("interop", command, "--help")
    assert run.code == 0
    assert f"example:\n  cityx interop {command}" in run.out


def test_json_contract_when_all_pass(reference_url: str) -> None:
    run = cityx("interop", "conformance", "--target", reference_url, "--json")
    body = run.json()  # exactly one JSON object
    assert run.code == 0
    assert set(body) == {"profile", "cases", "passed", "failed"}
    assert body["profile"] == "city"
    assert all(set(case) == {"id", "passed", "reason"} for case in body["cases"])
    assert [case["id"] for case in body["cases"]] == [case.id for case in CITY_SUITE]
    assert (body["passed"], body["failed"]) == (len(CITY_SUITE), 0)


def test_any_failure_exits_3_and_names_both_codes(trust_dir: Path) -> None:
    reference = reference_handler(load_trust(trust_dir), audience=AUDIENCE)

    def stale_is_future(request: Request) -> Answer:
        answer = reference(request)
        return Answer(False, "future_dated") if answer.reason == "stale" else answer

    with HttpServer(stale_is_future) as server:
        run = cityx("interop", "conformance", "--target", server.url)
    assert run.code == 3
    assert "FAIL  stale" in run.out and "future_dated" in run.out
    assert f"{len(CITY_SUITE) - 1} passed, 1 failed" in run.out


def test_unreachable_endpoint_exits_2_with_one_line() -> None:
    run = cityx("interop", "conformance", "--target", f"http://127.0.0.1:{free_port()}/")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "cannot reach the endpoint" in run.err


def test_unreachable_endpoint_with_json_still_prints_one_object() -> None:
    run = cityx("interop", "conformance", "--target", "mqtt://127.0.0.1:1883", "--json")
    assert run.code == 2
    assert run.json()["error"]["exit_code"] == 2


def test_write_trust_then_list(tmp_path: Path) -> None:
    run = cityx("interop", "conformance", "--write-trust", tmp_path / "t", "--json")
    assert run.code == 0
    written = run.json()
    assert written["audience"] == AUDIENCE and len(written["trust"]) == 4
    store = load_trust(tmp_path / "t")
    assert store.key(make_issuers(0)["sender"].key.kid) is not None
    assert store.key(make_issuers(0)["stranger"].key.kid) is None
    run = cityx("interop", "conformance", "--list", "--json")
    assert run.code == 0
    assert {c["id"] for c in run.json()["cases"]} == {c.id for c in CITY_SUITE}


def test_one_case_and_unknown_case(reference_url: str) -> None:
    argv = ("interop", "conformance", "--target", reference_url, "--case")
    run = cityx(*argv, "replay-jti", "--json")
    assert run.code == 0 and run.json()["passed"] == 1
    run = cityx(*argv, "nope")
    assert run.code == 2 and "unknown conformance case 'nope'" in run.err


def test_serve_http_then_conformance(trust_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    argv = ["interop", "serve", "--trust", str(trust_dir), "--aud", AUDIENCE]
    # The server runs main() itself, on a thread: its banner goes to the test's
    # standard output (capsys), not to the client's capture below.
    server = threading.Thread(
        target=main, args=([*argv, "--http", f"127.0.0.1:{port}", "--duration", "2"],)
    )
    server.start()
    try:
        banner = _wait_for_banner(capsys)  # printed once it listens
        run = cityx("interop", "conformance", "--target", f"http://127.0.0.1:{port}/")
    finally:
        server.join()
    assert run.code == 0, run.out
    assert f"serving the reference endpoint at http://127.0.0.1:{port}/" in banner


@pytest.mark.mqtt
def test_serve_mqtt_answers_the_suite(trust_dir: Path) -> None:
    target = f"mqtt://127.0.0.1:1883/cityx-test/cli/{uuid.uuid4().hex[:12]}"
    with MqttServer(reference_handler(load_trust(trust_dir), audience=AUDIENCE), target):
        run = cityx("interop", "conformance", "--target", target, "--case", "valid-flow")
    assert run.code == 0, run.out


def test_serve_refuses_bad_input(trust_dir: Path) -> None:
    argv = ("interop", "serve", "--trust", trust_dir, "--aud", AUDIENCE)
    run = cityx(*argv, "--http", "nowhere")
    assert run.code == 2 and "HOST:PORT" in run.err
    run = cityx(*argv, "--mqtt", f"mqtt://127.0.0.1:{free_port()}/x")
    assert run.code == 2 and "cannot reach the MQTT broker" in run.err
    run = cityx("interop", "serve", "--trust", "/no/such", "--aud", AUDIENCE, "--http", ":0")
    assert run.code == 2


def _wait_for_banner(capsys: pytest.CaptureFixture[str], timeout_s: float = 5.0) -> str:
    """What the server thread printed, once it printed its banner line."""
    printed = ""
    deadline = time.monotonic() + timeout_s
    while "serving the reference endpoint" not in printed:
        assert time.monotonic() < deadline, f"no banner within {timeout_s:g} s: {printed!r}"
        time.sleep(0.02)
        printed += capsys.readouterr().out
    return printed
