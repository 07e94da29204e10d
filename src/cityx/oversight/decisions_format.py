"""The decision log's format: file names, record kinds, and the body a checkpoint signs.

Shared by the writer (:mod:`.decisions`) and the verifier (:mod:`.decisions_verify`);
the words (record, kind, checkpoint, seal, anchor) are defined in :mod:`.decisions`.
"""

from __future__ import annotations

from cityx.core.audit import sorted_json

LOG_FILE = "decisions.jsonl"
KEY_FILE = "decisions.key.json"
SCHEMA = "decision-log/v1"
CHECKPOINT = "checkpoint"
CHECKPOINT_PURPOSE = "decision-log.checkpoint"
ANCHOR_ACTION = "decisions.checkpoint"
KINDS = (
    "choice",
    "request",
    "command",
    "command.reason",
    "mode",
    "alert",
    "violation",
    CHECKPOINT,
)


def seal_body(run: str, upto: int, head: str, final: bool) -> bytes:
    """The canonical body a checkpoint signs the SHA-256 of."""
    return sorted_json({"schema": SCHEMA, "run": run, "upto": upto, "head": head, "final": final})


__all__ = [
    "ANCHOR_ACTION",
    "CHECKPOINT",
    "CHECKPOINT_PURPOSE",
    "KEY_FILE",
    "KINDS",
    "LOG_FILE",
    "SCHEMA",
    "seal_body",
]
