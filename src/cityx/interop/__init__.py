"""Secure interoperability: signed, schema-checked messages between vendors' systems.

Detectors, the AI under test and signal controllers exchange *envelopes*:
compact JWS (Ed25519) whose claims carry one NGSI-LD entity (see
:mod:`.messages`, :mod:`.envelope`). Receivers hold a *trust store* of
issuers' public keys with validity windows, revocations and permissions
(:mod:`.trust`), and run every envelope through the verification pipeline
(:mod:`.verify`), which answers with a :class:`Verification` and a stable reason
code, never an exception. A *profile* (:mod:`.profiles`) says which entities a
receiver accepts: ``base``, what the FIWARE Smart Data Models accept, or
``city``, which requires more. :mod:`.bus` carries envelopes over a transport.
:mod:`.longterm` is the second, long-lived signature profile for evidence
(decision-log checkpoints, rulings, evidence packages): detached, no expiry.
:mod:`.conformance` is the vendor conformance suite and :mod:`.endpoint`
our reference receiver that passes it.
"""

from .bus import (
    TOPIC_ROOT,
    InMemoryTransport,
    Message,
    Rejection,
    SecureChannel,
    Transport,
    topic_for,
    topic_matches,
)
from .canonical import StrictJSONError, canonical_json, payload_digest, strict_loads
from .envelope import (
    ENVELOPE_VERSION,
    TYP,
    AiInfo,
    Claims,
    Provenance,
    Signer,
    claims_problem,
    sign,
)
from .errors import InteropError, KeyFileError, MessageError, TrustStoreError
from .key_files import KeyFiles, write_key_files
from .keys import ALG, SigningKey, generate_key, load_signing_key
from .longterm import (
    LongReason,
    LongStatus,
    LongVerification,
    sign_digest,
    sign_value,
    trust_of_jwk,
    verify_digest,
    verify_value,
)
from .messages import (
    Catalog,
    MessageType,
    SchemaEngine,
    schema_id,
    signal_phase_command,
    traffic_flow_observed,
)
from .plausibility import PhysicalLimits, check_plausible
from .profiles import (
    DEFAULT_PROFILE,
    Profile,
    SmartDataModels,
    key_values,
    profile_named,
)
from .trust import (
    TRUST_FORMAT,
    StaticTrustStore,
    TrustedKey,
    TrustStore,
    load_trust,
    trust_document,
)
from .trust_db import DbTrustStore, TrustRecords
from .verify import Reason, Verification, Verifier, VerifierPolicy

__all__ = [
    "ALG",
    "DEFAULT_PROFILE",
    "ENVELOPE_VERSION",
    "TOPIC_ROOT",
    "TRUST_FORMAT",
    "TYP",
    "AiInfo",
    "Catalog",
    "Claims",
    "DbTrustStore",
    "InMemoryTransport",
    "InteropError",
    "KeyFileError",
    "KeyFiles",
    "LongReason",
    "LongStatus",
    "LongVerification",
    "Message",
    "MessageError",
    "MessageType",
    "PhysicalLimits",
    "Profile",
    "Provenance",
    "Reason",
    "Rejection",
    "SchemaEngine",
    "SecureChannel",
    "Signer",
    "SigningKey",
    "SmartDataModels",
    "StaticTrustStore",
    "StrictJSONError",
    "Transport",
    "TrustRecords",
    "TrustStore",
    "TrustStoreError",
    "TrustedKey",
    "Verification",
    "Verifier",
    "VerifierPolicy",
    "canonical_json",
    "check_plausible",
    "claims_problem",
    "generate_key",
    "key_values",
    "load_signing_key",
    "load_trust",
    "payload_digest",
    "profile_named",
    "schema_id",
    "sign",
    "sign_digest",
    "sign_value",
    "signal_phase_command",
    "strict_loads",
    "topic_for",
    "topic_matches",
    "traffic_flow_observed",
    "trust_document",
    "trust_of_jwk",
    "verify_digest",
    "verify_value",
    "write_key_files",
]
