"""Waiting on a condition with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it holds.

    For state nothing signals (a transport's ``connected`` flag dropping); where a
    callback can signal, a :class:`Collector` wakes up the moment it does.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


class Collector(Generic[T]):
    """A callback that keeps what it is called with, for tests to wait on.

    Callbacks of network transports run on another thread; the condition
    variable makes ``wait`` return as soon as the item it waits for is in.
    """

    def __init__(self) -> None:
        self._items: list[T] = []
        self._changed = threading.Condition()

    def __call__(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)

    @property
    def items(self) -> list[T]:
        """A copy of everything collected so far, in arrival order."""
        with self._changed:
            return list(self._items)

    def wait(self, until: int | Callable[[list[T]], bool], timeout_s: float = 5.0) -> bool:
        """Wait until ``until`` items are in (or ``until(items)`` holds); False on timeout."""
        if isinstance(until, int):
            count = until

            def holds(items: list[T]) -> bool:
                return len(items) >= count
        else:
            holds = until
        with self._changed:
            return self._changed.wait_for(lambda: holds(self._items), timeout_s)
