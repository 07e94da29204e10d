"""Resource limits of the worker process that hosts a system under test.

The *worker* is the child process that loads a vendor's artifact and answers
calls. Its *memory limit* caps its address space (``RLIMIT_AS``), its
*CPU-time limit* caps the processor seconds it may use over its whole life
(``RLIMIT_CPU``), and the *call timeout* and *load timeout* are wall-clock
limits the parent enforces on each call and on loading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cityx.core import InputError


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Limits of one worker; the defaults suit a gradient-boosted model on a laptop.

    ``threads`` sets ``OMP_NUM_THREADS`` and its cousins in the worker: one
    thread by default, because every extra thread reserves its own stacks
    and allocator arenas and so makes the memory limit hard to predict.
    """

    memory_mb: int = 4096
    cpu_s: int = 600
    call_timeout_s: float = 30.0
    load_timeout_s: float = 60.0
    threads: int = 1
    # A command the worker runs under, e.g. a bubblewrap jail built by the server
    # (cityx.server.walls); empty: none. With one, the worker's environment is scrubbed
    # to the few variables it needs.
    wrapper: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _whole("memory_mb", self.memory_mb, 256, "at least 256 (Python and numpy alone need ~200)")
        _whole("cpu_s", self.cpu_s, 1, "a whole number of seconds, at least 1")
        _whole("threads", self.threads, 1, "at least 1")
        _seconds("call_timeout_s", self.call_timeout_s)
        _seconds("load_timeout_s", self.load_timeout_s)


def _whole(name: str, value: object, least: int, allowed: str) -> None:
    # bool is an int subclass; True as a memory limit is a bug at the call site.
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InputError(f"{name} must be {allowed}, got {value!r}", where=f"Limits.{name}")


def _seconds(name: str, value: object) -> None:
    ok = (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )
    if not ok:
        raise InputError(
            f"{name} must be a positive finite number of seconds, got {value!r}",
            where=f"Limits.{name}",
        )


# The default limits, shared: Limits is frozen, so one instance serves every default.
DEFAULT_LIMITS = Limits()


__all__ = ["DEFAULT_LIMITS", "Limits"]
