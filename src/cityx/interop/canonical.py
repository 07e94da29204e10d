"""JSON text rules: strict parsing in, canonical form out.

*Strict parsing* reads JSON the way RFC 7493 (I-JSON) asks, so that two
receivers can never read one signed text two ways: no duplicate member
names, no lone surrogates, no NaN or Infinity, no number that overflows a
double, and no nesting deeper than a limit (deep nesting is a
denial-of-service, and Python's parser would hit its recursion limit).

The *canonical form* of a JSON value is its RFC 8785 (JCS) serialisation:
members sorted by UTF-16 code units, no whitespace, numbers in ECMAScript
form. A *payload digest* is the lowercase hex SHA-256 of the canonical
form: a detached payload is bound to its envelope by it, whatever
whitespace or member order the payload travels in.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

import rfc8785

MAX_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class StrictJSONError(ValueError):
    """A JSON text breaks the strict rules (or is not JSON at all)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise StrictJSONError(f"duplicate member {name!r}")
            seen.add(name)
    return obj


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"number {text[:20]} overflows a double")
    return value


# Configuration only, no state: json.loads would build an equal decoder on every call.
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)


def _depth_over(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def strict_loads(data: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text under the strict rules; :class:`StrictJSONError` if it breaks one."""
    # Counting brackets is C-fast and bounds the depth, so most texts skip the walk.
    bounded = data.count(b"{") + data.count(b"[") <= max_depth
    try:
        # Decode first: json.loads(bytes) would also guess UTF-16 and UTF-32.
        value = _DECODER.decode(data.decode("utf-8"))
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError(f"nested deeper than {max_depth}") from None
    except ValueError as exc:  # JSONDecodeError, bad UTF-8, an integer of too many digits
        raise StrictJSONError(f"not JSON: {exc}") from None
    if not bounded and _depth_over(value, max_depth):
        raise StrictJSONError(f"nested deeper than {max_depth}")
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise StrictJSONError("a string holds a lone UTF-16 surrogate")
    return value


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical form; ValueError for what JCS cannot represent."""
    return rfc8785.dumps(value)


def payload_digest(value: Any) -> str:
    """Lowercase hex SHA-256 of the canonical form of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


__all__ = [
    "MAX_DEPTH",
    "StrictJSONError",
    "canonical_json",
    "payload_digest",
    "strict_loads",
]
