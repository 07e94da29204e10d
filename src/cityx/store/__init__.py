"""Persistence: SQLite by default, PostgreSQL for a shared deployment.

Open a store with :meth:`Store.open` (a store URL, or None for
:func:`default_store_url`); it migrates the schema, records submissions and
trials, and keeps the hash-chained audit log (:mod:`cityx.core.audit`).
"""

from cityx.core.audit import AuditEntry, AuditHead, AuditVerification

from ._engine import POSTGRESQL, StoreTarget, parse_store_url
from ._identity import TokenRecord, UserRecord
from ._jobs import JobRecord
from ._live import LiveCommandRecord, LiveRunRecord
from ._metering import Charge, RulingRecord, SubmissionRecord, now_text
from ._store import ACTOR, Store, TrialRecord, default_store_url

__all__ = [
    "ACTOR",
    "POSTGRESQL",
    "AuditEntry",
    "AuditHead",
    "AuditVerification",
    "Charge",
    "JobRecord",
    "LiveCommandRecord",
    "LiveRunRecord",
    "RulingRecord",
    "Store",
    "StoreTarget",
    "SubmissionRecord",
    "TokenRecord",
    "TrialRecord",
    "UserRecord",
    "default_store_url",
    "now_text",
    "parse_store_url",
]
