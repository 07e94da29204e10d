"""RFC 8785 canonical form (with the RFC's own examples) and the strict JSON rules."""

from __future__ import annotations

import hashlib

import pytest

from cityx.interop import StrictJSONError, canonical_json, payload_digest, strict_loads


def test_rfc8785_section_3_2_2_example() -> None:
    value = strict_loads(
        b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode()


def test_rfc8785_sorts_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: the order depends on UTF-16, not on code points or UTF-8.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = list(strict_loads(canonical_json(value)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1e21, b"1e+21"),
        (1e-7, b"1e-7"),
        (-0.0, b"0"),
        (5e-324, b"5e-324"),
        (123456789012.0, b"123456789012"),
    ],
)
def test_rfc8785_number_forms(number: float, text: bytes) -> None:
    assert canonical_json(number) == text


def test_payload_digest_ignores_spelling() -> None:
    a = strict_loads(b'{"b": 1, "a": [1.0, "x"]}')
    b = strict_loads(b'{"a":[1,"x"],"b":1.00}')
    assert (
        payload_digest(a) == payload_digest(b) == hashlib.sha256(b'{"a":[1,"x"],"b":1}').hexdigest()
    )


def test_payload_digest_refuses_what_jcs_cannot_hold() -> None:
    with pytest.raises(ValueError, match="safe integer"):
        payload_digest({"a": 2**60})


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":2}',
        b"NaN",
        b"[Infinity]",
        b"1e400",
        b'"\\udc00"',
        b"\xff",
        b"[" * 40 + b"]" * 40,
        b"{",
        b"1 2",
    ],
)
def test_strict_rules(text: bytes) -> None:
    with pytest.raises(StrictJSONError):
        strict_loads(text)


def test_strict_allows_surrogate_pairs_and_bounded_depth() -> None:
    assert strict_loads(b'"\\ud83d\\ude00"') == "\U0001f600"
    assert strict_loads(b"[" * 32 + b"]" * 32) is not None
    # Brackets inside strings count toward the quick bound but do not nest.
    assert strict_loads(b'["' + b"[" * 100 + b'"]') == ["[" * 100]
