"""The atheris fuzz target (fuzz/verify.py) stays importable, typed and able to find bugs.

``make fuzz`` runs it under libFuzzer for a bounded time; here its one-input
function runs over a handful of fixed inputs in plain Python.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from cityx.interop import Reason, Verification

from ..support.paths import ROOT

TARGET = ROOT / "fuzz" / "verify.py"


@pytest.fixture(scope="module")
def target() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cityx_fuzz_verify", TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _inputs(seed: int, n: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 600, size=n)
    return [rng.bytes(int(size)) for size in sizes]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_input_over_random_inputs(target: ModuleType, seed: int) -> None:
    verdicts = [target.run_one(data) for data in _inputs(seed, 150)]
    made = [v for v in verdicts if v is not None]
    assert made, "no input produced an envelope"
    assert all(isinstance(v, Verification) for v in made)
    assert all(v.accepted or isinstance(v.reason, Reason) for v in made)


def test_every_mode_is_reached(target: ModuleType) -> None:
    """Each kind of input the target makes gets through to the verifier at least once."""
    verified: set[int] = set()
    for first in range(len(target.MODES)):
        # The first byte picks the mode; the rest is random.
        for data in _inputs(10 + first, 20):
            picked: list[int] = []
            if target.run_one(bytes([first]) + data, on_mode=picked.append) is not None:
                verified.update(picked)
    never = [target.MODES[m] for m in range(len(target.MODES)) if m not in verified]
    assert not never, f"modes that never reached the verifier: {never}"


def test_seed_envelopes_are_accepted_by_the_target_verifier(target: ModuleType) -> None:
    for envelope, topic, detached in target.SEEDS:
        verifier = target.Verifier(
            target.TRUST, audience=target.AUD, catalog=target.CATALOG, now=target._now
        )
        verdict = verifier.verify(envelope, topic=topic, payload=detached)
        assert verdict.accepted, verdict.detail


def test_the_oracle_catches_a_verifier_that_accepts_anything(
    target: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def accept(self: Any, envelope: Any, **_: Any) -> Verification:
        return Verification(True, None, "accepted")

    monkeypatch.setattr(target.Verifier, "verify", accept)
    with pytest.raises(target.FuzzFinding, match="not validly signed"):
        # Mode 1 (byte edits of a seed, never re-signed): flip one byte of seed 0.
        target.one_input(bytes([1, 0, 1, 5, 0, 65, 0, 0, 0]))


def test_the_oracle_catches_a_verifier_that_raises(
    target: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self: Any, envelope: Any, **_: Any) -> Verification:
        raise IndexError("boom")

    monkeypatch.setattr(target.Verifier, "verify", explode)
    with pytest.raises(target.FuzzFinding, match="raised IndexError"):
        target.one_input(bytes([0]) + b"x.y.z")
