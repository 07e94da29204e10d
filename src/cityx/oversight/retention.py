"""Retention of decision logs: prune whole sealed segments, leave a signed tombstone.

A *segment* is the run of records a checkpoint seals: the records after the
previous checkpoint, up to and including this one. :func:`prune_decisions`
removes the segments, from the start of the log, whose checkpoint is older
than the retention (``keep_days``), and writes a tombstone
(:mod:`.tombstone`) in their place, signed by the pruner's key (the city's:
the run's own key is never on disk). Only whole sealed segments go: records
after the last checkpoint (an unsealed tail) are never pruned, nor is
anything newer than the retention. Art. 26(6) of the EU AI Act asks
deployers to keep logs at least six months, so a retention under
:data:`MINIMUM_DAYS` is refused unless asked for explicitly.

The file is replaced atomically (written beside, then renamed): a prune
that fails leaves the log as it was.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cityx.core.audit import AuditEntry
from cityx.core.errors import InputError
from cityx.interop import SigningKey

from .decisions_format import CHECKPOINT
from .decisions_verify import _claimed_run, _log_path, read_log, verify_decisions
from .tombstone import make_tombstone

MINIMUM_DAYS = 183  # about six months (Art. 26(6))


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune did (``records`` 0: nothing was old enough)."""

    path: Path
    records: int  # removed by this prune
    upto: int  # the last seq now under the tombstone (0: none)
    kept: int  # records left in the file
    cutoff: str  # checkpoints sealed before this time were prunable

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "records": self.records,
            "upto": self.upto,
            "kept": self.kept,
            "cutoff": self.cutoff,
        }


def _at(text: str) -> datetime:
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def prune_decisions(
    path: Path,
    key: SigningKey,
    *,
    keep_days: float,
    now: datetime | None = None,
    allow_short: bool = False,
) -> PruneResult:
    """Prune the sealed segments older than ``keep_days``; the log must verify first."""
    if not keep_days >= 0:
        raise InputError(f"keep_days must be 0 or more, got {keep_days}", where="keep_days")
    if keep_days < MINIMUM_DAYS and not allow_short:
        raise InputError(
            f"a retention of {keep_days:g} days is under the {MINIMUM_DAYS} days "
            "(six months) Art. 26(6) asks deployers to keep logs",
            where="keep_days",
            hint="say so explicitly (--allow-under-six-months) if the law allows it here",
        )
    file = _log_path(path)
    before = verify_decisions(file)
    # Only seals that verify are prunable: pruning what broke would bury the evidence.
    if (before.reason or "").startswith("tombstone"):
        raise InputError(f"the decision log's {before.reason}; not pruning it", where=str(file))
    tomb, entries = read_log(file)
    cutoff = (now or datetime.now(UTC)) - timedelta(days=keep_days)
    cut = -1  # index of the last record to prune (a checkpoint)
    for k, e in enumerate(entries):
        if e.action == CHECKPOINT and e.seq <= before.sealed:
            if _at(e.at) >= cutoff:
                break
            cut = k
    if cut < 0:
        return PruneResult(file, 0, tomb.upto if tomb else 0, len(entries), cutoff.isoformat())
    gone, kept = entries[: cut + 1], entries[cut + 1 :]
    kinds: Counter[str] = Counter(dict(tomb.body["kinds"])) if tomb is not None else Counter()
    kinds.update(e.action for e in gone)
    seal = gone[-1]
    body = {
        "run": str(_claimed_run(str(seal.payload.get("jws", "")))),
        "upto": seal.seq,
        "head": seal.hash,
        "seal": seal.to_json(),
        "records": seal.seq,
        "checkpoints": kinds[CHECKPOINT],
        "kinds": dict(sorted(kinds.items())),
        "first_at": str(tomb.body["first_at"]) if tomb is not None else gone[0].at,
        "last_at": seal.at,
        "keep_days": keep_days,
        "pruned_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "previous": None if tomb is None else tomb.digest,
        "final": bool(seal.payload.get("final")),
    }
    stone = make_tombstone(body, key)
    lines = [stone.to_line(), *(_line(e) for e in kept)]
    temp = file.with_name(file.name + ".pruning")
    temp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(temp, file)
    return PruneResult(file, len(gone), seal.seq, len(kept), cutoff.isoformat())


def _line(e: AuditEntry) -> str:
    return json.dumps(e.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


__all__ = ["MINIMUM_DAYS", "PruneResult", "prune_decisions"]
