"""``cityx interop``: make keys, sign messages and verify envelopes from the shell.

``verify`` exits 0 when the envelope is accepted, 3 when it is rejected
(the reason code is printed) and 2 when its input cannot be read.
``--profile`` (``base`` or ``city``, the default) says which entities
``sign``, ``verify`` and ``serve`` accept, and which profile's cases
``conformance`` runs (the one the endpoint under test claims); an unknown
name exits 2.
``conformance`` runs the vendor conformance suite against an endpoint:
0 when every case passes, 3 when any fails, 2 when the endpoint cannot be
reached. ``serve`` runs our reference endpoint, which passes them all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    EXIT_OK,
    EXIT_VERDICT,
    Subparsers,
    add_command,
    add_group,
    emit,
    positive_seconds,
    seed,
)

_AUD = "urn:cityx:city:cologne:tmc"
_KEY = "keys/*.key.jwk"  # what `cityx interop keygen --out keys` wrote
_PROFILES = "base, city"  # = cityx.interop.Profile, kept lazy
_DEFAULT_PROFILE = "city"  # = cityx.interop.DEFAULT_PROFILE, kept lazy


def _add_profile(parser: argparse.ArgumentParser, what: str) -> None:
    # A plain string: an unknown name is the interop layer's one-line error (exit 2), not
    # argparse's usage dump.
    parser.add_argument(
        "--profile",
        default=_DEFAULT_PROFILE,
        metavar="NAME",
        help=f"{what}: {_PROFILES} (default: {_DEFAULT_PROFILE}); base accepts what the "
        "FIWARE Smart Data Models accept, city requires more",
    )


def register(sub: Subparsers) -> None:
    """Add ``cityx interop keygen|sign|verify|conformance|serve``."""
    group = add_group(sub, "interop", "Sign and verify messages exchanged between systems.")

    keygen = add_command(
        group,
        "keygen",
        "Make an Ed25519 signing key for an issuer: a private JWK (mode 0600) and a "
        "public trust document for receivers.",
        "cityx interop keygen --issuer urn:cityx:vendor:acme:detector-12 --out keys",
        _keygen,
    )
    keygen.add_argument("--issuer", required=True, metavar="URN", help="the sender's issuer URN")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    keygen.add_argument("--json", action="store_true", help="print one JSON object")

    sign = add_command(
        group,
        "sign",
        "Check an NGSI-LD entity against its schema under a profile, sign it and print the "
        "compact JWS.",
        f"cityx interop sign --key {_KEY} --type TrafficFlowObserved --aud {_AUD} "
        "examples/interop/traffic-flow-city.json > flow.jws\n"
        f"  cityx interop sign --key {_KEY} --type TrafficFlowObserved --aud {_AUD} "
        "--profile base examples/interop/traffic-flow-location-only.json > flow.jws",
        _sign,
    )
    sign.add_argument("file", type=Path, metavar="FILE", help="the entity, a JSON file")
    sign.add_argument("--key", type=Path, required=True, metavar="KEYFILE", help="private JWK")
    sign.add_argument("--type", required=True, metavar="TYPE", help="message type")
    sign.add_argument(
        "--aud", required=True, action="append", metavar="AUD", help="receiver URN (repeatable)"
    )
    sign.add_argument("--topic", metavar="T", help="the bus topic to bind the envelope to")
    sign.add_argument(
        "--detached", action="store_true", help="sign the payload's digest, not the payload"
    )
    sign.add_argument("--ttl", type=int, default=60, metavar="S", help="lifetime (default: 60)")
    sign.add_argument("--device", metavar="ID", help="provenance device (default: the issuer)")
    _add_profile(sign, "the profile the entity must meet")

    verify = add_command(
        group,
        "verify",
        "Run an envelope through the verification pipeline; exit 0 if accepted, 3 if rejected.",
        "cityx interop verify --trust keys --aud urn:cityx:city:cologne:tmc --json flow.jws",
        _verify,
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the compact JWS")
    verify.add_argument(
        "--trust", type=Path, required=True, metavar="JWKS_OR_DIR", help="trust document or folder"
    )
    verify.add_argument("--aud", metavar="AUD", help="this receiver's URN (default: any)")
    verify.add_argument("--topic", metavar="T", help="the topic the envelope arrived on")
    verify.add_argument(
        "--payload", type=Path, metavar="FILE", help="the entity of a detached envelope"
    )
    verify.add_argument(
        "--max-age", type=float, default=60.0, metavar="S", help="oldest iat accepted (default: 60)"
    )
    verify.add_argument("--json", action="store_true", help="print one JSON object")
    _add_profile(verify, "the profile this receiver accepts entities under")
    _register_conformance(group)


_CONFORMANCE_AUD = "urn:cityx:conformance:receiver"  # = conformance.AUDIENCE, kept lazy


def _register_conformance(group: Subparsers) -> None:
    conformance = add_command(
        group,
        "conformance",
        "Run the interop conformance suite against a vendor's endpoint (HTTP or MQTT 5); "
        "exit 0 if every case passes, 3 if any fails. First give the endpoint the suite's "
        "trust documents (--write-trust DIR).",
        "cityx interop conformance --write-trust conformance-trust\n"
        "  cityx interop conformance --target http://127.0.0.1:8080/ --json\n"
        "  cityx interop conformance --target http://127.0.0.1:8080/ --profile base\n"
        "  cityx interop conformance --target mqtt://127.0.0.1:1883/vendor/acme --case replay-jti",
        _conformance,
    )
    what = conformance.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--target",
        metavar="URL",
        help="the endpoint: http://HOST:PORT/PATH or mqtt://HOST:PORT/PREFIX",
    )
    what.add_argument(
        "--write-trust",
        type=Path,
        metavar="DIR",
        help="write the trust documents the endpoint must load, then exit",
    )
    what.add_argument("--list", action="store_true", help="list the cases and exit")
    conformance.add_argument(
        "--aud",
        default=_CONFORMANCE_AUD,
        metavar="URN",
        help=f"the endpoint's receiver URN (default: {_CONFORMANCE_AUD})",
    )
    conformance.add_argument(
        "--seed", type=seed, default=0, help="seed of the suite's issuer keys (default: 0)"
    )
    conformance.add_argument(
        "--case", action="append", metavar="ID", help="run only this case (repeatable)"
    )
    conformance.add_argument(
        "--timeout", type=float, default=5.0, metavar="S", help="per request (default: 5)"
    )
    conformance.add_argument(
        "--require-reasons",
        action="store_true",
        help="fail a rejection that gives no reason code",
    )
    _add_profile(conformance, "the profile the endpoint claims; it chooses the cases")
    conformance.add_argument("--json", action="store_true", help="print one JSON object")

    serve = add_command(
        group,
        "serve",
        "Run the reference endpoint (our verification pipeline) for the conformance suite, "
        "over HTTP or MQTT 5, until interrupted.",
        f"cityx interop serve --trust conformance-trust --aud {_CONFORMANCE_AUD} "
        "--http 127.0.0.1:8080",
        _serve,
    )
    serve.add_argument(
        "--trust", type=Path, required=True, metavar="JWKS_OR_DIR", help="trust document or folder"
    )
    serve.add_argument("--aud", required=True, metavar="URN", help="this receiver's URN")
    where = serve.add_mutually_exclusive_group(required=True)
    where.add_argument("--http", metavar="HOST:PORT", help="listen for HTTP POSTs here")
    where.add_argument("--mqtt", metavar="URL", help="answer on mqtt://HOST:PORT/PREFIX")
    serve.add_argument(
        "--max-age", type=float, default=60.0, metavar="S", help="oldest iat accepted (default: 60)"
    )
    serve.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="S",
        help="stop after this many seconds (default: run until interrupted)",
    )
    _add_profile(serve, "the profile the endpoint accepts entities under")


def _read(path: Path, what: str) -> bytes:
    # lazy: cityx --help stays fast
    from cityx.interop import InteropError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InteropError(f"no such {what} file", where=str(path)) from None
    except OSError as exc:
        raise InteropError(f"cannot read the {what} file: {exc.strerror}", where=str(path)) from exc


def _keygen(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import generate_key, write_key_files

    key = generate_key(args.issuer)
    files = write_key_files(key, args.out)
    emit(
        args,
        {
            "issuer": key.issuer,
            "kid": key.kid,
            "private": str(files.private),
            "public": str(files.public),
        },
        f"kid {key.kid}\nprivate key: {files.private} (keep it secret)\n"
        f"trust document: {files.public} (give it to receivers)",
    )
    return EXIT_OK


def _sign(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import Catalog, MessageError, Signer, load_signing_key, profile_named

    profile = profile_named(args.profile)
    key = load_signing_key(args.key)
    try:
        entity: Any = json.loads(_read(args.file, "entity"))
    except ValueError as exc:
        raise MessageError(f"not JSON: {exc}", where=str(args.file)) from None
    if not isinstance(entity, dict):
        raise MessageError("the entity must be a JSON object", where=str(args.file))
    catalog = Catalog.builtin(profile=profile)
    signer = Signer(key, catalog=catalog, device=args.device, ttl_s=args.ttl)
    aud = args.aud[0] if len(args.aud) == 1 else args.aud
    envelope = signer.sign(
        entity, audience=aud, topic=args.topic, detached=args.detached, message_type=args.type
    )
    sys.stdout.write(envelope + "\n")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import Catalog, Verifier, VerifierPolicy, load_trust, profile_named

    profile = profile_named(args.profile)
    trust = load_trust(args.trust)
    envelope = _read(args.file, "envelope").strip()
    payload = _read(args.payload, "payload") if args.payload else None
    verifier = Verifier(
        trust,
        audience=args.aud,
        catalog=Catalog.builtin(profile=profile),
        policy=VerifierPolicy(max_age_s=args.max_age),
    )
    verdict = verifier.verify(envelope, topic=args.topic, payload=payload)
    if verdict.accepted and verdict.claims is not None:
        claims = verdict.claims
        text = f"accepted: {claims['type']} from {claims['iss']} (seq {claims['seq']})"
    else:
        text = f"rejected: {verdict.reason}: {verdict.detail}"
    # The detail names what failed (for schema_invalid: the profile and the field).
    emit(args, {**verdict.to_json(), "detail": verdict.detail}, text)
    return EXIT_OK if verdict.accepted else EXIT_VERDICT


def _conformance(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import profile_named
    from cityx.interop.conformance import SUITE_VERSION, open_endpoint, run_suite, suite_for
    from cityx.interop.conformance import write_trust as write

    profile = profile_named(args.profile)
    if args.list:
        cases = [
            {"id": c.id, "title": c.title, "expected": str(c.expected)} for c in suite_for(profile)
        ]
        lines = [f"{c['id']:<22} {c['expected']:<28} {c['title']}" for c in cases]
        emit(
            args,
            {"suite": SUITE_VERSION, "profile": profile.value, "cases": cases},
            "\n".join(lines),
        )
        return EXIT_OK
    if args.write_trust is not None:
        paths = write(args.write_trust, seed=args.seed)
        emit(
            args,
            {"trust": [str(p) for p in paths], "seed": args.seed, "audience": args.aud},
            f"wrote {len(paths)} trust documents to {args.write_trust}; load them in the "
            f"endpoint and give it the receiver URN {args.aud}",
        )
        return EXIT_OK
    endpoint = open_endpoint(args.target)
    try:
        report = run_suite(
            endpoint,
            seed=args.seed,
            audience=args.aud,
            cases=args.case,
            timeout_s=args.timeout,
            require_reasons=args.require_reasons,
            profile=profile,
        )
    finally:
        endpoint.close()
    lines = [f"{'PASS' if r.passed else 'FAIL'}  {r.id:<22} {r.reason}" for r in report.cases]
    lines.append(
        f"{report.passed} passed, {report.failed} failed "
        f"({report.suite}, {profile} profile, {args.target})"
    )
    emit(args, report.to_json(), "\n".join(lines))
    return EXIT_OK if report.ok else EXIT_VERDICT


def _serve(args: argparse.Namespace) -> int:
    # lazy: cityx --help stays fast
    from cityx.interop import VerifierPolicy, load_trust, profile_named
    from cityx.interop.endpoint import HttpServer, MqttServer, parse_listen, reference_handler

    profile = profile_named(args.profile)
    handler = reference_handler(
        load_trust(args.trust),
        audience=args.aud,
        policy=VerifierPolicy(max_age_s=args.max_age),
        profile=profile,
    )
    server: HttpServer | MqttServer
    if args.http is not None:
        host, port = parse_listen(args.http)
        server = HttpServer(handler, host=host, port=port)
    else:
        server = MqttServer(handler, args.mqtt)
    with server.start():
        sys.stdout.write(
            f"serving the reference endpoint at {server.url} ({profile} profile; Ctrl-C to stop)\n"
        )
        sys.stdout.flush()
        try:
            if args.duration is not None:
                time.sleep(args.duration)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return EXIT_OK


__all__ = ["register"]
