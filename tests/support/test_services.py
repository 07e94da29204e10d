"""The service rule itself: a missing service skips a test, but fails it under CI=true."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import services


@pytest.fixture
def mqtt_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The mqtt probe reports the broker down; the session's cached answers are kept apart."""
    services.problem.cache_clear()
    monkeypatch.setitem(services._PROBES, "mqtt", lambda: "the broker is down")
    yield
    services.problem.cache_clear()


@pytest.mark.parametrize("ci", [None, "false", "1"])
def test_a_missing_service_skips_outside_ci(
    mqtt_down: None, monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"the broker is down \(`make services`"):
        services.require("mqtt")


def test_a_missing_service_fails_under_ci(mqtt_down: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="the broker is down; CI=true"):
        services.require("mqtt")


def test_a_service_that_answers_is_required_silently(monkeypatch: pytest.MonkeyPatch) -> None:
    services.problem.cache_clear()
    monkeypatch.setitem(services._PROBES, "mqtt", lambda: None)
    monkeypatch.setenv("CI", "true")
    try:
        services.require("mqtt")
    finally:
        services.problem.cache_clear()


def test_every_service_has_a_marker(pytestconfig: pytest.Config) -> None:
    declared = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    assert set(services.SERVICES) <= declared
