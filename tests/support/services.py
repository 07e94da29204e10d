"""The outside services some tests need: skipped where they are missing, an error in CI.

A test marked ``postgres`` needs PostgreSQL at 127.0.0.1:5432 (trust auth, as
the ``postgres`` role); one marked ``mqtt`` needs the Mosquitto broker at
127.0.0.1:1883. Tests that start a broker of their own need the ``mosquitto``
program instead (:func:`mosquitto_program`).

The rule, in one place (:func:`unavailable`): on a developer's machine a
missing service skips the test and says what is missing and how to start it
(``make services``). When the environment variable ``CI`` is ``true`` (as
``.ci/run`` sets it, and most CI systems do) the same test fails instead, so a
CI run without its services can never pass by skipping what it was meant to test.

tests/conftest.py applies :func:`require` to every test by its markers, before
any fixture runs; each service is probed once per session.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
from typing import NoReturn

import pytest

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
MQTT_ADDRESS = ("127.0.0.1", 1883)
PROBE_TIMEOUT_S = 3


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``), where nothing may be skipped for a service."""
    return os.environ.get("CI") == "true"


def unavailable(what: str) -> NoReturn:
    """Skip the running test because ``what`` is missing; fail it instead under ``CI=true``."""
    if in_ci():
        pytest.fail(f"{what}; CI=true, so a missing service is an error, not a skip", pytrace=False)
    pytest.skip(f"{what} (`make services` starts PostgreSQL and Mosquitto)")


def _postgres_problem() -> str | None:
    import psycopg  # the postgres extra: only the tests that need PostgreSQL need it

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=PROBE_TIMEOUT_S).close()
    except psycopg.OperationalError as exc:
        return f"PostgreSQL is not reachable ({' '.join(str(exc).split())})"
    return None


def _mqtt_problem() -> str | None:
    host, port = MQTT_ADDRESS
    try:
        socket.create_connection(MQTT_ADDRESS, timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"the Mosquitto broker is not reachable at {host}:{port} ({exc.strerror or exc})"
    return None


_PROBES = {"postgres": _postgres_problem, "mqtt": _mqtt_problem}
SERVICES = tuple(_PROBES)  # the marker names


@functools.cache
def problem(service: str) -> str | None:
    """Why ``service`` (a marker name) cannot be used, or None; asked once per session."""
    return _PROBES[service]()


def require(service: str) -> None:
    """Return if ``service`` answers; else skip or fail the running test (:func:`unavailable`)."""
    found = problem(service)
    if found is not None:
        unavailable(found)


def mosquitto_program() -> str:
    """The ``mosquitto`` executable, for tests that start a broker of their own."""
    # Debian puts it in /usr/sbin, which is not on every user's PATH.
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if found is None:
        unavailable("the mosquitto program is not installed (apt-get install mosquitto)")
    return found
