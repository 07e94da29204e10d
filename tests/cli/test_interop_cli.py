"""``cityx interop`` end to end, in a subprocess: keygen, sign, verify, tamper."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cityx.interop import traffic_flow_observed

from ..support.cli import cityx

ISSUER = "urn:cityx:vendor:acme:detector-12"
AUD = "urn:cityx:city:cologne:tmc"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    keys = folder / "keys"
    made = cityx(
        "interop", "keygen", "--issuer", ISSUER, "--out", str(keys), "--json", inprocess=False
    )
    assert made.code == 0, made.err
    files = made.json()
    entity = traffic_flow_observed(
        "lane-1",
        road_segment="a4-km12",
        lane_id=1,
        observed_at=time.time() - 1,
        period_s=60,
        intensity=9,
    )
    (folder / "flow.json").write_text(json.dumps(entity))
    topic = f"cityx/v1/cologne/TrafficFlowObserved/{ISSUER}"
    run = cityx(
        *("interop", "sign", "--key", files["private"], "--type", "TrafficFlowObserved"),
        *("--aud", AUD, "--topic", topic, str(folder / "flow.json")),
        inprocess=False,
    )
    assert run.code == 0, run.err
    (folder / "flow.jws").write_text(run.out)
    return {
        "folder": folder,
        "keys": keys,
        "envelope": folder / "flow.jws",
        "private": Path(files["private"]),
    }


def test_keygen_sign_verify_accepts(signed: dict[str, Path]) -> None:
    run = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        "--aud",
        AUD,
        "--json",
        str(signed["envelope"]),
        inprocess=False,
    )
    assert run.code == 0, run.err
    out = run.json()
    assert set(out) == {"accepted", "reason", "detail", "claims"}
    assert out["accepted"] is True and out["reason"] is None and out["claims"]["iss"] == ISSUER
    text = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        str(signed["envelope"]),
        inprocess=False,
    )
    assert text.code == 0 and text.out.startswith("accepted: TrafficFlowObserved")


def test_tampered_envelope_exits_3_with_the_reason(signed: dict[str, Path]) -> None:
    head, body, signature = signed["envelope"].read_text().strip().split(".")
    i = len(body) // 2
    body = body[:i] + ("A" if body[i] != "A" else "B") + body[i + 1 :]
    tampered = signed["folder"] / "tampered.jws"
    tampered.write_text(f"{head}.{body}.{signature}\n")
    run = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        "--aud",
        AUD,
        "--json",
        str(tampered),
        inprocess=False,
    )
    assert run.code == 3, run.err
    out = run.json()
    assert out == {
        "accepted": False,
        "reason": out["reason"],
        "claims": None,
        "detail": out["detail"],
    }
    assert out["reason"] in {"bad_signature", "malformed"}


def test_wrong_audience_exits_3(signed: dict[str, Path]) -> None:
    run = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        "--aud",
        "urn:cityx:city:bonn:tmc",
        str(signed["envelope"]),
        inprocess=False,
    )
    assert run.code == 3 and run.out.startswith("rejected: wrong_audience")


def test_detached_sign_and_verify(signed: dict[str, Path]) -> None:
    flow = signed["folder"] / "flow.json"
    run = cityx(
        "interop",
        "sign",
        "--key",
        str(signed["private"]),
        "--type",
        "TrafficFlowObserved",
        "--aud",
        AUD,
        "--detached",
        str(flow),
        inprocess=False,
    )
    assert run.code == 0, run.err
    envelope = signed["folder"] / "detached.jws"
    envelope.write_text(run.out)
    ok = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        "--payload",
        str(flow),
        "--json",
        str(envelope),
        inprocess=False,
    )
    assert ok.code == 0, ok.out
    missing = cityx(
        "interop",
        "verify",
        "--trust",
        str(signed["keys"]),
        "--json",
        str(envelope),
        inprocess=False,
    )
    assert missing.code == 3 and missing.json()["reason"] == "digest_mismatch"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["verify", "--trust", "{keys}", "{folder}/nope.jws"], "no such envelope file"),
        (["verify", "--trust", "{folder}/nope", "{envelope}"], "no such trust"),
        (
            [
                "sign",
                "--key",
                "{folder}/nope.jwk",
                "--type",
                "Road",
                "--aud",
                AUD,
                "{folder}/flow.json",
            ],
            "no such key file",
        ),
        (
            ["sign", "--key", "{private}", "--type", "Road", "--aud", AUD, "{folder}/flow.json"],
            "not 'Road'",
        ),
        (
            [
                "sign",
                "--key",
                "{private}",
                "--type",
                "TrafficFlowObserved",
                "--aud",
                AUD,
                "{envelope}",
            ],
            "not JSON",
        ),
        (["keygen", "--issuer", "acme", "--out", "{folder}/k2"], "URN"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    signed: dict[str, Path], args: list[str], words: str
) -> None:
    filled = [a.format(**{k: str(v) for k, v in signed.items()}) for a in args]
    run = cityx("interop", *filled, inprocess=False)
    assert run.code == 2, (run.out, run.err)
    assert run.err.count("\n") == 1 and words in run.err


@pytest.mark.parametrize("command", ["keygen", "sign", "verify"])
def test_help_has_an_example(command: str) -> None:
    run = cityx("interop", command, "--help", inprocess=False)
    assert run.code == 0 and "example:" in run.out and "cityx interop" in run.out
