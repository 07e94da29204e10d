"""``--profile`` on ``cityx interop sign|verify|conformance|serve``, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from cityx.interop import load_trust
from cityx.interop.conformance import AUDIENCE, suite_for, write_trust
from cityx.interop.endpoint import HttpServer, reference_handler

from ..support.cli import cityx

BASE_ONLY = {"valid-flow-location", "valid-flow-address", "valid-flow-minimal"}


@pytest.fixture(scope="module")
def trust_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trust")
    write_trust(folder, seed=0)
    return folder


@pytest.mark.parametrize("command", ["sign", "verify", "conformance", "serve"])
def test_help_offers_the_profiles(command: str) -> None:
    run = cityx("interop", command, "--help")
    assert run.code == 0
    text = " ".join(run.out.split())  # argparse wraps the help text
    assert "--profile NAME" in text and "base, city (default: city)" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["sign", "--key", "k.jwk", "--type", "Road", "--aud", "urn:x:y", "e.json"],
        ["verify", "--trust", "keys", "e.jws"],
        ["conformance", "--list"],
        ["conformance", "--target", "http://127.0.0.1:9/"],
        ["serve", "--trust", "keys", "--aud", "urn:x:y", "--http", "127.0.0.1:0"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_an_unknown_profile_exits_2_with_one_line(argv: list[str]) -> None:
    run = cityx("interop", *argv, "--profile", "strict")
    assert run.code == 2
    assert run.err == (
        "cityx: error: unknown interop profile 'strict' (known profiles: base, city)\n"
    )


def test_list_shows_the_claimed_profiles_cases() -> None:
    base = cityx("interop", "conformance", "--list", "--profile", "base", "--json").json()
    city = cityx("interop", "conformance", "--list", "--json").json()
    assert (base["profile"], city["profile"]) == ("base", "city")
    base_ids, city_ids = {c["id"] for c in base["cases"]}, {c["id"] for c in city["cases"]}
    assert base_ids - city_ids == BASE_ONLY
    assert city_ids - base_ids == {"city-road-segment"}


def test_a_case_outside_the_claimed_profile_exits_2(trust_dir: Path) -> None:
    with HttpServer(reference_handler(load_trust(trust_dir), audience=AUDIENCE)) as server:
        run = cityx(
            *("interop", "conformance", "--target", server.url),
            *("--case", "valid-flow-location"),
        )
    assert run.code == 2
    assert "'valid-flow-location' is not in the city profile's suite" in run.err


def test_conformance_judges_the_profile_the_endpoint_claims(trust_dir: Path) -> None:
    trust = load_trust(trust_dir)
    base = reference_handler(trust, audience=AUDIENCE, profile="base")
    with HttpServer(base) as server:
        passed = cityx("interop", "conformance", "--target", server.url, "--profile", "base")
        wrong = cityx("interop", "conformance", "--target", server.url, "--json")
    assert passed.code == 0, passed.out
    n = len(suite_for("base"))
    assert f"{n} passed, 0 failed (cityx.conformance/v1, base profile, {server.url})" in passed.out
    # The same base endpoint, claimed as city: it accepts the flow the city must refuse.
    assert wrong.code == 3
    failed = {c["id"] for c in wrong.json()["cases"] if not c["passed"]}
    assert failed == {"city-road-segment"}


def test_verify_json_names_the_profile_and_the_field(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "interop"
    made = cityx("interop", "keygen", "--issuer", "urn:cityx:vendor:acme:d-1", "--out", tmp_path)
    key = made.out.split("private key: ", 1)[1].split(" ", 1)[0]
    signed = cityx(
        *("interop", "sign", "--key", key, "--type", "TrafficFlowObserved"),
        *("--aud", "urn:x:y", "--profile", "base"),
        examples / "traffic-flow-location-only.json",
    )
    assert signed.code == 0, signed.err
    (tmp_path / "located.jws").write_text(signed.out)
    verify = ("interop", "verify", "--trust", tmp_path, "--json", tmp_path / "located.jws")
    city = cityx(*verify)
    assert city.code == 3
    assert city.json()["reason"] == "schema_invalid"
    assert city.json()["detail"] == (
        "city profile requires refRoadSegment (the Smart Data Model does not)"
    )
    base = cityx(*verify, "--profile", "base")
    assert base.code == 0 and base.json()["detail"] == "accepted"
