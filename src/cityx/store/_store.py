"""The store: submissions, trials, findings, gate decisions and the audit log.

Words used here:

- a *submission* is one packaged AI system, identified by its system id,
  version and artifact digest (``sha256``); recording it twice is a no-op;
- a *trial* runs the checks of a policy against a submission with a seed;
  it is *incomplete* from :meth:`Store.begin_trial` until
  :meth:`Store.finish_trial` stores its results, findings and *gate
  decision* and marks it *complete*, all in one transaction, so a trial
  killed half-way stays incomplete and never half-written;
- the *audit log* is the append-only, hash-chained record of every change
  (see :mod:`cityx.core.audit`); its *head* is the number of entries and the
  newest hash.
- *trusted keys* and *revocations* are the rows of the database-backed
  trust store (:mod:`cityx.interop.trust_db` gives them meaning); importing
  and revoking are audited like every other change.

Every write is one transaction that also appends its audit entries: the
store never holds a change without its record, nor a record without its
change. Writers queue so that two processes never extend the chain from the
same entry (which would fork it): SQLite write transactions begin with
``BEGIN IMMEDIATE``, PostgreSQL ones lock the single ``audit_head`` row
``FOR UPDATE`` before doing anything else.
"""

from __future__ import annotations

from ._audit_log import AuditLog
from ._base import ACTOR, StoreBase, default_store_url
from ._identity import IdentityRows
from ._jobs import JobRows
from ._live import LiveRows
from ._metering import MeteringRows
from ._trials import TrialLog, TrialRecord
from ._trust import TrustRows


class Store(
    IdentityRows, JobRows, LiveRows, MeteringRows, TrialLog, TrustRows, AuditLog, StoreBase
):
    """A cityx store. Open one with :meth:`open`; close it, or use it in ``with``.

    Its parts, one module each: connection, transactions and migrations
    (:mod:`._base`), the audit log (:mod:`._audit_log`), submissions and
    trials (:mod:`._trials`), trust rows (:mod:`._trust`). Every write is one
    transaction that appends its own audit entries.
    """


__all__ = ["ACTOR", "Store", "TrialRecord", "default_store_url"]
