"""``cityx interop conformance`` and ``cityx interop serve``, in process: argv in, exit out."""

from __future__ import annotations

import json
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
from cityx.interop.conformance import AUDIENCE, SUITE, Answer, Request, make_issuers, write_trust
from cityx.interop.endpoint import HttpServer, MqttServer, reference_handler


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


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["interop", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_default_audience_is_the_suites() -> None:
    assert _CONFORMANCE_AUD == AUDIENCE


@pytest.mark.parametrize("command", ["conformance", "serve"])
def test_help_has_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["interop", command, "--help"])
    assert done.value.code == 0
    assert f"example:\n  cityx interop {command}" in capsys.readouterr().out


def test_json_contract_when_all_pass(
    reference_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "conformance", "--target", reference_url, "--json")
    body = json.loads(out)  # exactly one JSON object
    assert code == 0
    assert set(body) == {"cases", "passed", "failed"}
    assert all(set(case) == {"id", "passed", "reason"} for case in body["cases"])
    assert [case["id"] for case in body["cases"]] == [case.id for case in SUITE]
    assert (body["passed"], body["failed"]) == (len(SUITE), 0)


def test_any_failure_exits_3_and_names_both_codes(
    trust_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference = reference_handler(load_trust(trust_dir), audience=AUDIENCE)

    def stale_is_future(request: Request) -> Answer:
        answer = reference(request)
        return Answer(False, "future_dated") if answer.reason == "stale" else answer

    with HttpServer(stale_is_future) as server:
        code, out, _ = run(capsys, "conformance", "--target", server.url)
    assert code == 3
    assert "FAIL  stale" in out and "future_dated" in out
    assert f"{len(SUITE) - 1} passed, 1 failed" in out


def test_unreachable_endpoint_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    target = f"http://127.0.0.1:{free_port()}/"
    code, _, err = run(capsys, "conformance", "--target", target)
    assert code == 2
    assert err.count("\n") == 1 and "cannot reach the endpoint" in err


def test_unreachable_endpoint_with_json_still_prints_one_object(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "conformance", "--target", "mqtt://127.0.0.1:1883", "--json")
    assert code == 2
    assert json.loads(out)["error"]["exit_code"] == 2


def test_write_trust_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "conformance", "--write-trust", str(tmp_path / "t"), "--json")
    assert code == 0
    written = json.loads(out)
    assert written["audience"] == AUDIENCE and len(written["trust"]) == 4
    store = load_trust(tmp_path / "t")
    assert store.key(make_issuers(0)["sender"].key.kid) is not None
    assert store.key(make_issuers(0)["stranger"].key.kid) is None
    code, out, _ = run(capsys, "conformance", "--list", "--json")
    assert code == 0
    listed = json.loads(out)
    assert {c["id"] for c in listed["cases"]} == {c.id for c in SUITE}


def test_one_case_and_unknown_case(reference_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "conformance", "--target", reference_url, "--case", "replay-jti", "--json"
    )
    assert code == 0 and json.loads(out)["passed"] == 1
    code, _, err = run(capsys, "conformance", "--target", reference_url, "--case", "nope")
    assert code == 2 and "unknown conformance case 'nope'" in err


def test_serve_http_then_conformance(trust_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    argv = ["interop", "serve", "--trust", str(trust_dir), "--aud", AUDIENCE]
    server = threading.Thread(
        target=main, args=([*argv, "--http", f"127.0.0.1:{port}", "--duration", "2"],)
    )
    server.start()
    try:
        _wait_for_port(port)
        code, out, _ = run(capsys, "conformance", "--target", f"http://127.0.0.1:{port}/")
    finally:
        server.join()
    assert code == 0, out
    assert f"serving the reference endpoint at http://127.0.0.1:{port}/" in out


@pytest.mark.mqtt
def test_serve_mqtt_answers_the_suite(trust_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = f"mqtt://127.0.0.1:1883/cityx-test/cli/{uuid.uuid4().hex[:12]}"
    with MqttServer(reference_handler(load_trust(trust_dir), audience=AUDIENCE), target):
        code, out, _ = run(capsys, "conformance", "--target", target, "--case", "valid-flow")
    assert code == 0, out


def test_serve_refuses_bad_input(trust_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["serve", "--trust", str(trust_dir), "--aud", AUDIENCE]
    code, _, err = run(capsys, *argv, "--http", "nowhere")
    assert code == 2 and "HOST:PORT" in err
    code, _, err = run(capsys, *argv, "--mqtt", f"mqtt://127.0.0.1:{free_port()}/x")
    assert code == 2 and "cannot reach the MQTT broker" in err
    code, _, err = run(capsys, "serve", "--trust", "/no/such", "--aud", AUDIENCE, "--http", ":0")
    assert code == 2


def _wait_for_port(port: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
