"""The live operator channel on the interop bus.

A console (or any operator tool) publishes signed commands
(:mod:`.signed`) on ``cityx/v1/{city}/OperatorCommand/{operator}``;
:func:`listen` subscribes a run's :class:`~.commands.CommandQueue` to
them over any interop transport (in-memory, or MQTT to the city's broker).
Each message is verified before it is queued; a refused one is kept with
its reason code for the decision log. Every verified command also counts
as the channel's heartbeat: with ``channel_timeout_s`` set on the run, a
channel silent for longer puts adaptive intersections on the fixed-time
plan (logged as a mode change, reason "operator channel lost").
"""

from __future__ import annotations

from collections.abc import Callable

from cityx.interop import Transport, topic_for
from cityx.interop.bus import TOPIC_ROOT

from .commands import CommandQueue
from .signed import COMMAND_TYPE, CommandVerifier


def command_topic(city: str, operator: str) -> str:
    return topic_for(city, COMMAND_TYPE, operator)


def listen(
    transport: Transport, queue: CommandQueue, verifier: CommandVerifier, *, city: str
) -> Callable[[], None]:
    """Feed ``queue`` from the bus; returns the transport's unsubscribe callable."""

    def deliver(topic: str, data: bytes) -> None:
        queue.submit_signed(data.decode("ascii", "replace").strip(), verifier)

    return transport.subscribe(f"{TOPIC_ROOT}/{city}/{COMMAND_TYPE}/+", deliver)


def publish_command(transport: Transport, token: str, *, city: str, operator: str) -> None:
    """Send a signed command (from :func:`~.signed.sign_command`) on the bus."""
    transport.publish(command_topic(city, operator), token.encode("ascii"))


__all__ = ["command_topic", "listen", "publish_command"]
