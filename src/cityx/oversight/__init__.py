"""Human oversight of the city's traffic AI (EU AI Act Art. 14).

Operating modes per intersection through the safety envelope
(:mod:`.modes`), operator commands (:mod:`.commands`), an independent
conflict monitor (:mod:`.monitor`), a signed decision log
(:mod:`.decisions`), alerts against automation bias (:mod:`.alerts`), runs
under oversight (:mod:`.session`), drills (:mod:`.drills`) and the
Art. 14(4) table (:mod:`.art14`). See docs/oversight.md.
"""

from .alerts import Alert, AlertBook, AlertLimits
from .art14 import art14_table
from .commands import (
    Action,
    CommandQueue,
    CommandRecord,
    CommandState,
    OperatorCommand,
    RefusalCode,
    load_operator_file,
    parse_commands,
)
from .decisions import DecisionLog, DecisionsVerification, iter_records, verify_decisions
from .drills import DrillOutcome, FallbackOnAlert, run_drill
from .modes import Mode, ModeChange, StopState, Supervisor
from .monitor import ConflictMonitor, MonitorReport, References, Violation
from .session import OversightResult, OversightSpec, run_oversight

__all__ = [
    "Action",
    "Alert",
    "AlertBook",
    "AlertLimits",
    "CommandQueue",
    "CommandRecord",
    "CommandState",
    "ConflictMonitor",
    "DecisionLog",
    "DecisionsVerification",
    "DrillOutcome",
    "FallbackOnAlert",
    "Mode",
    "ModeChange",
    "MonitorReport",
    "OperatorCommand",
    "OversightResult",
    "OversightSpec",
    "References",
    "RefusalCode",
    "StopState",
    "Supervisor",
    "Violation",
    "art14_table",
    "iter_records",
    "load_operator_file",
    "parse_commands",
    "run_drill",
    "run_oversight",
    "verify_decisions",
]
