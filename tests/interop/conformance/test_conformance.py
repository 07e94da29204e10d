"""The conformance suite: the reference endpoint passes it, a lax one fails exactly its cases.

HTTP endpoints run in threads of this process; MQTT ones talk through the
system Mosquitto at 127.0.0.1:1883 (marked ``mqtt``: skipped without it, an error under
CI=true).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from cityx.core import InputError
from cityx.interop import (
    Catalog,
    Reason,
    StaticTrustStore,
    TrustedKey,
    Verifier,
    VerifierPolicy,
    load_trust,
)
from cityx.interop.conformance import (
    AUDIENCE,
    MAX_BYTES,
    SUITE,
    Answer,
    BadAnswer,
    EndpointError,
    Expected,
    HttpEndpoint,
    MqttEndpoint,
    NoAnswer,
    Request,
    judge,
    make_issuers,
    open_endpoint,
    parse_mqtt_target,
    run_suite,
    select,
    suite_for,
    trust_documents,
    write_trust,
)
from cityx.interop.endpoint import (
    Handler,
    HttpServer,
    LocalEndpoint,
    MqttServer,
    parse_listen,
    reference_handler,
)
from cityx.interop.mqtt import BrokerError

from ..conftest import free_port

BROKER = "mqtt://127.0.0.1:1883"
# What a default run sends: the cases of the city profile, the sandbox's.
CITY_SUITE = suite_for("city")
# What the lax endpoint below skips: replay state, the audience, revocation, the size limit.
LAX_FAILS = {"replay-jti", "replay-sequence", "wrong-audience", "revoked-key", "oversize"}
REQUIRED = {
    "valid-flow", "valid-detached", "valid-legacy-eddsa", "forged-signature", "unknown-key",
    "revoked-key", "replay-jti", "replay-sequence", "stale", "future-dated", "wrong-audience",
    "unpermitted-type", "unpermitted-topic", "schema-invalid", "oversize", "not-jws", "alg-none",
}  # fmt: skip


@pytest.fixture(scope="module")
def trust_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("conformance-trust")
    write_trust(folder, seed=0)
    return folder


@pytest.fixture(scope="module")
def trust(trust_dir: Path) -> StaticTrustStore:
    return load_trust(trust_dir)


@pytest.fixture
def reference(trust: StaticTrustStore, catalog: Catalog) -> Handler:
    return reference_handler(trust, audience=AUDIENCE, catalog=catalog)


class _Unrevoked:
    """A trust store that forgets revocations (what a lax receiver effectively does)."""

    def __init__(self, store: StaticTrustStore) -> None:
        self._store = store

    def key(self, kid: str) -> TrustedKey | None:
        key = self._store.key(kid)
        return None if key is None else replace(key, revoked_at=None)


@pytest.fixture
def lax(trust: StaticTrustStore, catalog: Catalog) -> Handler:
    def handle(request: Request) -> Answer:
        # A fresh verifier per envelope keeps no replay state; no audience, no size limit.
        verifier = Verifier(
            _Unrevoked(trust),
            audience=None,
            catalog=catalog,
            policy=VerifierPolicy(max_bytes=10**7),
        )
        verdict = verifier.verify(request.token, topic=request.topic, payload=request.payload)
        return Answer(verdict.accepted, verdict.reason.value if verdict.reason else None)

    return handle


@pytest.fixture
def prefix() -> str:
    # A unique prefix keeps runs apart on the shared system broker.
    return f"cityx-test/conformance/{uuid.uuid4().hex[:12]}"


# -- the published suite ------------------------------------------------------------------------


def test_suite_has_the_published_cases() -> None:
    ids = [case.id for case in SUITE]
    assert len(ids) == len(set(ids))
    assert set(ids) >= REQUIRED
    valid = {case.id for case in SUITE if case.expected.accepted}
    assert valid == {i for i in ids if i.startswith("valid-")}
    assert all(isinstance(c.expected.reason, Reason) for c in SUITE if c.id not in valid)


def test_suite_expects_the_default_policy() -> None:
    assert VerifierPolicy().max_bytes == MAX_BYTES
    with pytest.raises(InputError, match="timeout must be positive"):
        run_suite(LocalEndpoint(lambda request: Answer(True)), timeout_s=0)


def test_select_keeps_suite_order_and_refuses_unknown_ids() -> None:
    assert [c.id for c in select(["stale", "valid-flow"])] == ["valid-flow", "stale"]
    with pytest.raises(InputError, match="unknown conformance case 'nope'"):
        select(["nope"])


def test_issuer_keys_come_from_the_seed() -> None:
    first, again, other = make_issuers(0), make_issuers(0), make_issuers(1)
    assert {n: i.key.kid for n, i in first.items()} == {n: i.key.kid for n, i in again.items()}
    assert first["sender"].key.kid != other["sender"].key.kid
    assert trust_documents(3) == trust_documents(3)


def test_trust_documents_hold_what_the_cases_need(trust: StaticTrustStore) -> None:
    issuers = make_issuers(0)
    assert trust.key(issuers["stranger"].key.kid) is None
    assert trust.key(issuers["forger"].key.kid) is None
    revoked = trust.key(issuers["revoked"].key.kid)
    assert revoked is not None and revoked.revoked_at is not None
    limited = trust.key(issuers["limited"].key.kid)
    assert limited is not None and not limited.allows_type("TrafficFlowObserved")


# -- judging ------------------------------------------------------------------------------------


def test_a_rejection_for_another_reason_fails_naming_both() -> None:
    passed, reason = judge(Expected(Reason.STALE), Answer(False, "future_dated"))
    assert not passed
    assert "stale" in reason and "future_dated" in reason
    assert judge(Expected(Reason.STALE), Answer(False, "stale"))[0]
    assert not judge(Expected(), Answer(False, "stale"))[0]
    assert not judge(Expected(Reason.STALE), Answer(True))[0]


def test_a_rejection_without_a_code_passes_unless_codes_are_required() -> None:
    assert judge(Expected(Reason.STALE), Answer(False))[0]
    passed, reason = judge(Expected(Reason.STALE), Answer(False), require_reasons=True)
    assert not passed and "without a reason code" in reason


def test_an_endpoint_that_rejects_everything_fails_the_valid_and_priming_cases() -> None:
    report = run_suite(LocalEndpoint(lambda request: Answer(False)))
    priming = {case.id for case in CITY_SUITE if case.id.startswith("replay-")}
    assert report.failures() == {c.id for c in CITY_SUITE if c.expected.accepted} | priming
    replay = next(r for r in report.cases if r.id == "replay-jti")
    assert "priming request 1 of 2" in replay.reason


# -- the reference and the lax endpoint, over every transport -----------------------------------


def test_reference_passes_every_case_in_process(reference: Handler) -> None:
    report = run_suite(LocalEndpoint(reference))
    assert report.failures() == set(), [r.reason for r in report.cases if not r.passed]
    assert report.passed == len(CITY_SUITE) and report.failed == 0


def test_reference_passes_every_case_over_http_twice(reference: Handler) -> None:
    with HttpServer(reference) as server:
        for _ in range(2):  # a second run must not look like a replay of the first
            report = run_suite(HttpEndpoint(server.url))
            assert report.ok, [r.reason for r in report.cases if not r.passed]


@pytest.mark.mqtt
def test_reference_passes_every_case_over_mqtt(reference: Handler, prefix: str) -> None:
    target = f"{BROKER}/{prefix}"
    with MqttServer(reference, target), MqttEndpoint(target) as endpoint:
        report = run_suite(endpoint)
    assert report.ok, [r.reason for r in report.cases if not r.passed]
    assert report.passed == len(CITY_SUITE)


def test_lax_endpoint_fails_exactly_its_cases_over_http(lax: Handler) -> None:
    with HttpServer(lax) as server:
        report = run_suite(HttpEndpoint(server.url))
    assert report.failures() == LAX_FAILS
    reasons = {r.id: r.reason for r in report.cases}
    assert reasons["revoked-key"] == "expected rejected (revoked_key), got accepted"
    assert reasons["replay-jti"] == "expected rejected (replayed_jti), got accepted"


@pytest.mark.mqtt
def test_lax_endpoint_fails_exactly_its_cases_over_mqtt(lax: Handler, prefix: str) -> None:
    target = f"{BROKER}/{prefix}"
    with MqttServer(lax, target), MqttEndpoint(target) as endpoint:
        report = run_suite(endpoint)
    assert report.failures() == LAX_FAILS


def test_report_json_shape(reference: Handler) -> None:
    report = run_suite(LocalEndpoint(reference), cases=["valid-flow", "stale"])
    body = json.loads(json.dumps(report.to_json()))
    assert set(body) == {"profile", "cases", "passed", "failed"}
    assert [set(c) for c in body["cases"]] == [{"id", "passed", "reason"}] * 2
    assert (body["passed"], body["failed"]) == (2, 0)


# -- failures of the endpoint itself ------------------------------------------------------------


class _Silent:
    """Answers like ``handler`` except that request number ``mute`` gets no answer."""

    target = "silent"

    def __init__(self, handler: Handler, mute: int) -> None:
        self.handler, self.mute, self.count = handler, mute, 0

    def exchange(self, request: Request, timeout_s: float) -> Answer:
        self.count += 1
        if self.count == self.mute:
            raise NoAnswer("no answer within 0.1 s")
        return self.handler(request)

    def close(self) -> None:
        pass


def test_a_request_without_answer_fails_its_case_only(reference: Handler) -> None:
    report = run_suite(_Silent(reference, mute=3))
    assert report.failures() == {CITY_SUITE[2].id}
    assert report.cases[2].reason == "no answer within 0.1 s"


def test_no_answer_at_all_is_an_unreachable_endpoint(reference: Handler) -> None:
    with pytest.raises(EndpointError, match="no answer from the endpoint at silent"):
        run_suite(_Silent(reference, mute=1))


def test_unreachable_http_endpoint_is_an_input_error() -> None:
    with pytest.raises(EndpointError, match="cannot reach the endpoint") as caught:
        run_suite(HttpEndpoint(f"http://127.0.0.1:{free_port()}/"))
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_unreachable_broker_is_an_input_error() -> None:
    with pytest.raises(BrokerError, match="cannot reach the MQTT broker") as caught:
        MqttEndpoint(f"mqtt://127.0.0.1:{free_port()}/x").connect()
    assert caught.value.exit_code == 2


@pytest.mark.mqtt
def test_nobody_on_the_mqtt_prefix_is_an_input_error(prefix: str) -> None:
    endpoint = MqttEndpoint(f"{BROKER}/{prefix}")
    with endpoint, pytest.raises(EndpointError, match="no answer from the endpoint"):
        run_suite(endpoint, timeout_s=0.3)


@pytest.mark.parametrize(
    ("target", "match"),
    [
        ("ftp://127.0.0.1/", "must be http://host:port/path or mqtt"),
        ("mqtt://127.0.0.1:1883", "mqtt://host:port/prefix"),
        ("mqtt://127.0.0.1:1883/a/+", "mqtt://host:port/prefix"),
        ("mqtts://127.0.0.1:8883/a", "mqtts is not supported"),
        ("http:///nohost", "http://host:port/path"),
    ],
)
def test_bad_targets(target: str, match: str) -> None:
    with pytest.raises(EndpointError, match=match):
        open_endpoint(target)


def test_parse_targets_and_listen_addresses() -> None:
    parsed = parse_mqtt_target("mqtt://127.0.0.1:1884/vendor/acme/")
    assert (parsed.port, parsed.prefix, parsed.request_topic) == (
        1884,
        "vendor/acme",
        "vendor/acme/request",
    )
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    with pytest.raises(EndpointError, match="HOST:PORT"):
        parse_listen("8080")


def test_wire_formats() -> None:
    request = Request("a.b.c", "t/x", {"id": "e"})
    assert Request.decode(request.encode()) == request
    for body, match in [
        (b"[1]", "string 'token'"),
        (b"{", "not JSON"),
        (b'{"token": "x", "topic": 1}', "topic"),
        (b'{"token": "x", "payload": []}', "payload"),
    ]:
        with pytest.raises(ValueError, match=match):
            Request.decode(body)
    assert Answer.decode(b'{"accepted": false, "reason": "stale"}') == Answer(False, "stale")
    assert Answer.decode(b'{"accepted": true, "reason": "x"}') == Answer(True)
    for bad in (b"yes", b'{"accepted": 1}', b'{"accepted": false, "reason": 3}'):
        with pytest.raises(BadAnswer):
            Answer.decode(bad)


def test_http_server_refuses_a_bad_request(reference: Handler) -> None:
    with HttpServer(reference) as server:
        request = urllib.request.Request(server.url, data=b"{", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        with caught.value as error:
            assert error.code == 400
            assert "not JSON" in json.loads(error.read())["error"]


def test_http_server_on_a_busy_port_is_an_input_error(reference: Handler) -> None:
    with HttpServer(reference) as server, pytest.raises(EndpointError, match="cannot listen"):
        HttpServer(reference, port=server.port).start()


# -- profiles: the endpoint claims one, the suite runs its cases ---------------------------------

BASE_ONLY = {"valid-flow-location", "valid-flow-address", "valid-flow-minimal"}
CITY_ONLY = {"city-road-segment"}


def test_each_profile_has_its_own_cases() -> None:
    base, city = {c.id for c in suite_for("base")}, {c.id for c in CITY_SUITE}
    assert base - city == BASE_ONLY and city - base == CITY_ONLY
    assert "sdm-lane-zero" in base & city  # what the standard forbids, every profile refuses
    assert [c.id for c in select(["valid-flow-location"], profile="base")] == [
        "valid-flow-location"
    ]
    with pytest.raises(InputError, match="'valid-flow-location' is not in the city profile"):
        select(["valid-flow-location"], profile="city")
    with pytest.raises(InputError, match="unknown interop profile 'strict'"):
        run_suite(LocalEndpoint(lambda request: Answer(True)), profile="strict")


@pytest.mark.parametrize("profile", ["base", "city"])
def test_reference_passes_the_cases_of_the_profile_it_claims(
    trust: StaticTrustStore, profile: str
) -> None:
    handler = reference_handler(trust, audience=AUDIENCE, profile=profile)
    report = run_suite(LocalEndpoint(handler), profile=profile)
    assert report.failures() == set(), [r.reason for r in report.cases if not r.passed]
    assert report.profile == profile and report.to_json()["profile"] == profile


def test_an_endpoint_claiming_the_wrong_profile_fails_exactly_the_profile_cases(
    trust: StaticTrustStore,
) -> None:
    # A city receiver refuses what the standard allows; a base one accepts what the city refuses.
    city = LocalEndpoint(reference_handler(trust, audience=AUDIENCE, profile="city"))
    assert run_suite(city, profile="base").failures() == BASE_ONLY
    base = LocalEndpoint(reference_handler(trust, audience=AUDIENCE, profile="base"))
    report = run_suite(base, profile="city")
    assert report.failures() == CITY_ONLY
    failed = next(r for r in report.cases if r.id == "city-road-segment")
    assert failed.reason == "expected rejected (schema_invalid), got accepted"
