"""Lenient reads of JSON values, for documents that may be older or edited by hand.

A *lenient* read never raises: a value of the wrong kind reads as absent
(``None``, an empty object or list), so a reader can still show the rest
of the document. Strict reads, which name what is wrong, are
:class:`~cityx.core.details.Fields`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any


def obj(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def items(value: Any) -> Sequence[Any]:
    """``value`` if it is a JSON list, else an empty one."""
    return value if isinstance(value, list | tuple) else ()


def number(value: Any) -> float | None:
    """A number as recorded (an int stays an int), or None; NaN is None too."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(value: Any) -> str | None:
    """A string as recorded, null as None, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def texts(value: Any) -> tuple[str, ...]:
    """The strings of a list (other values as their JSON text); nothing for a non-list."""
    return tuple(t for t in map(text, items(value)) if t is not None)


__all__ = ["integer", "items", "number", "obj", "text", "texts"]
