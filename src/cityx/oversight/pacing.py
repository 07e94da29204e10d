"""Pacing a run under oversight: real time, N x real time, or as fast as it goes; pause and step.

Words:

- the *pace* is how many simulated seconds pass per wall-clock second: ``1``
  is real time, ``10`` ten times faster, ``None`` as fast as the machine
  goes. A paced run waits before each step until that step's *turn*; a run
  that falls behind catches up by at most one step, never in a burst;
- *paused*: no step is taken, so simulated time stands still and the
  signals keep showing what they show (a paused run is as safe as the
  moment it paused: nothing in the world moves). Operator commands that
  arrive meanwhile are still accepted or refused at once, and act at the
  next step;
- *step*: one simulated second of a paused run, after which it stays paused;
- a ``pace`` command changes the pace while the run goes (``0``: as fast as
  it goes);
- the *run controls* ``pause``, ``continue``, ``step`` and ``pace``
  (:data:`~.commands.RUN_CONTROLS`) reach the :class:`Pacer` through the
  run's :class:`~.commands.CommandQueue`, signed and verified like any
  operator command when they come over the live channel.

The operator-channel timeout counts wall-clock silence *while the run
advances*: a pause stops that clock (the run restarts it when it goes on),
so a long pause is never mistaken for a lost channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cityx.core import InputError

from .commands import Action, CommandQueue, OperatorCommand, RefusalCode

IDLE_EVERY_S = 0.5  # while paused, how often the run reports that it is (the state feed)
_SLICE_S = 0.25  # the longest sleep without looking at the queue

# (queue id, the control, None when it acted, else why it was refused)
OnControl = Callable[[int, OperatorCommand, RefusalCode | None], None]


def check_pace(pace: float | None) -> float | None:
    if pace is not None and not 0 < pace <= 1e6:
        raise InputError(f"pace must be a factor > 0 (1 is real time), got {pace}", where="pace")
    return pace


class Pacer:
    """Decides when the next step may run; drives pause, continue and step."""

    def __init__(
        self,
        pace: float | None,
        queue: CommandQueue,
        *,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.pace = check_pace(pace)
        self.queue = queue
        self.clock = clock
        # Sleeps until a command arrives or the time is up (tests give a fake clock both).
        self.wait = wait or queue.wait
        self.paused = False
        self.paused_s = 0.0  # wall-clock seconds spent paused, in all
        self._steps = 0  # steps a paused run may still take
        self._turn: float | None = None  # when the next step may start (paced runs)

    @property
    def period_s(self) -> float:
        return 0.0 if self.pace is None else 1.0 / self.pace

    def _controls(self, on_control: OnControl) -> None:
        for cid, command in self.queue.controls():
            refusal: RefusalCode | None = None
            if command.action is Action.PACE:
                assert command.pace is not None
                self.pace = None if command.pace == 0 else command.pace
                self._turn = None  # the new pace counts from now, without catching up
            elif command.action is Action.PAUSE:
                self.paused, self._steps = True, 0
            elif not self.paused:
                refusal = RefusalCode.NOT_PAUSED
            elif command.action is Action.CONTINUE:
                self.paused, self._steps, self._turn = False, 0, None
                self.queue.touch()  # the channel spoke; the pause is not silence
            else:  # STEP
                self._steps += 1
            on_control(cid, command, refusal)

    def wait_turn(self, on_control: OnControl, idle: Callable[[], None]) -> None:
        """Return when the next step may run: not paused (or a step granted) and its turn
        come. ``idle()`` is called while paused, every :data:`IDLE_EVERY_S` at most, and when
        a command arrives while a paced run waits for its turn (so that it is accepted or
        refused at once, not a step later)."""
        self._controls(on_control)
        paused_at: float | None = None
        last_idle = -1e9
        while self.paused and self._steps == 0:
            now = self.clock()
            if paused_at is None:
                paused_at = now
            if now - last_idle >= IDLE_EVERY_S:
                idle()
                last_idle = now
            self.wait(_SLICE_S)
            self._controls(on_control)
        if paused_at is not None:
            self.paused_s += self.clock() - paused_at
            self.queue.touch()  # silence while paused does not count against the channel
        if self.paused:  # a granted step: take it now, whatever the pace
            self._steps -= 1
            return
        if self.pace is None:
            return
        now = self.clock()
        turn = now if self._turn is None else self._turn
        while now < turn:
            came = self.wait(min(turn - now, _SLICE_S))
            self._controls(on_control)
            if self.paused:
                self.wait_turn(on_control, idle)
                return
            if came:
                idle()  # a command between steps is accepted now; it acts at the step
            now = self.clock()
        # Behind by more than a step: catch up by one step at most, then keep the pace.
        self._turn = max(turn, now - self.period_s) + self.period_s


__all__ = ["IDLE_EVERY_S", "OnControl", "Pacer", "check_pace"]
