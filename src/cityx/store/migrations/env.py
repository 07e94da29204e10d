"""Alembic environment: cityx runs its migrations itself, when a store is opened.

:meth:`cityx.store.Store.open` passes an open connection, already inside the
transaction (and holding the lock) in which the upgrade must happen, through
``config.attributes["connection"]``; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

from cityx.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "cityx migrations run when a store is opened (cityx.store.Store.open), "
        "not from the alembic command line"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things: future migrations rebuild tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
