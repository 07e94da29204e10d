"""The interop conformance suite: does a vendor's receiver verify envelopes as it must?

The suite (:mod:`.cases`) is a published, versioned list of *cases*, each
a few signed (or deliberately broken) envelopes and the outcome a
conforming receiver must give: accepted, or rejected with one reason code
of :class:`~cityx.interop.verify.Reason`. The runner (:mod:`.runner`) sends
them to the *endpoint* under test over HTTP or MQTT 5 (:mod:`.protocol`)
and judges every answer. :mod:`cityx.interop.endpoint` holds our reference
endpoint, which passes every case.

Setup: the endpoint loads the trust documents of the suite's issuers
(:func:`write_trust`, ``cityx interop conformance --write-trust DIR``) and
uses :data:`AUDIENCE` as its own URN (or the suite is told its URN). The
suite is told the profile the endpoint claims (``base`` or ``city``, see
:mod:`cityx.interop.profiles`) and runs that profile's cases
(:func:`suite_for`).
"""

from .cases import (
    AUDIENCE,
    MAX_BYTES,
    SUITE,
    SUITE_VERSION,
    Case,
    Context,
    Expected,
    Issuer,
    make_issuers,
    select,
    suite_for,
    trust_documents,
    write_trust,
)
from .protocol import (
    Answer,
    BadAnswer,
    Endpoint,
    EndpointError,
    HttpEndpoint,
    MqttEndpoint,
    NoAnswer,
    Request,
    open_endpoint,
    parse_mqtt_target,
)
from .runner import CaseResult, Report, judge, run_suite

__all__ = [
    "AUDIENCE",
    "MAX_BYTES",
    "SUITE",
    "SUITE_VERSION",
    "Answer",
    "BadAnswer",
    "Case",
    "CaseResult",
    "Context",
    "Endpoint",
    "EndpointError",
    "Expected",
    "HttpEndpoint",
    "Issuer",
    "MqttEndpoint",
    "NoAnswer",
    "Report",
    "Request",
    "judge",
    "make_issuers",
    "open_endpoint",
    "parse_mqtt_target",
    "run_suite",
    "select",
    "suite_for",
    "trust_documents",
    "write_trust",
]
