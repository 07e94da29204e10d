"""``cityx interop``: make keys, sign messages and verify envelopes from the shell.

``verify`` exits 0 when the envelope is accepted, 3 when it is rejected
(the reason code is printed) and 2 when its input cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, EXIT_VERDICT, Subparsers, add_command, add_group, emit

_AUD = "urn:cityx:city:cologne:tmc"
_KEY = "keys/urn_cityx_vendor_acme_detector-12.AbCdEfGhIjKl.key.jwk"


def register(sub: Subparsers) -> None:
    """Add ``cityx interop keygen|sign|verify``."""
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
        "Check an NGSI-LD entity against its schema, sign it and print the compact JWS.",
        f"cityx interop sign --key {_KEY} --type TrafficFlowObserved --aud {_AUD} "
        "flow.json > flow.jws",
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


def _read(path: Path, what: str) -> bytes:
    from cityx.interop import InteropError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InteropError(f"no such {what} file", where=str(path)) from None
    except OSError as exc:
        raise InteropError(f"cannot read the {what} file: {exc.strerror}", where=str(path)) from exc


def _keygen(args: argparse.Namespace) -> int:
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
    from cityx.interop import Catalog, MessageError, Signer, load_signing_key

    key = load_signing_key(args.key)
    try:
        entity: Any = json.loads(_read(args.file, "entity"))
    except ValueError as exc:
        raise MessageError(f"not JSON: {exc}", where=str(args.file)) from None
    if not isinstance(entity, dict):
        raise MessageError("the entity must be a JSON object", where=str(args.file))
    signer = Signer(key, catalog=Catalog.builtin(), device=args.device, ttl_s=args.ttl)
    aud = args.aud[0] if len(args.aud) == 1 else args.aud
    envelope = signer.sign(
        entity, audience=aud, topic=args.topic, detached=args.detached, message_type=args.type
    )
    sys.stdout.write(envelope + "\n")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from cityx.interop import Catalog, Policy, Verifier, load_trust

    trust = load_trust(args.trust)
    envelope = _read(args.file, "envelope").strip()
    payload = _read(args.payload, "payload") if args.payload else None
    verifier = Verifier(
        trust,
        audience=args.aud,
        catalog=Catalog.builtin(),
        policy=Policy(max_age_s=args.max_age),
    )
    verdict = verifier.verify(envelope, topic=args.topic, payload=payload)
    if verdict.accepted and verdict.claims is not None:
        claims = verdict.claims
        text = f"accepted: {claims['type']} from {claims['iss']} (seq {claims['seq']})"
    else:
        text = f"rejected: {verdict.reason}: {verdict.detail}"
    emit(args, verdict.to_json(), text)
    return EXIT_OK if verdict.accepted else EXIT_VERDICT


__all__ = ["register"]
