"""The CityXchange server: one place where the regulator, vendors, overseers and auditors work.

A FastAPI app (:func:`cityx.server.app.create_app`) on uvicorn (:func:`serve`), on the same
store as the command line. Identities (organisations, users with roles,
tokens), query budgets and rulings live in the store; the policy
(:mod:`.policy`) is one typed table enforced by one guard on every route;
vendors' models answer through their isolated workers, metered and watched
by the extraction monitor (:mod:`.monitor`); trials requested over the API
are jobs, queued with huey in the store and run by a worker process outside
the web process (:mod:`.jobs`, :mod:`.queue`). See docs/server.md.

:func:`cityx.server.app.create_app`, :mod:`.run` (uvicorn) and :mod:`.demo`
(which runs a trial) are imported from their modules: this package's own
names are the light ones ``cityx users`` needs (no web framework, no scipy,
no trial runner).
"""

from .config import ServerConfig, load_config
from .identity import Principal, add_user, authenticate
from .policy import ROLE_PERMISSIONS, ROUTE_RULES, Permission, Role

__all__ = [
    "ROLE_PERMISSIONS",
    "ROUTE_RULES",
    "Permission",
    "Principal",
    "Role",
    "ServerConfig",
    "add_user",
    "authenticate",
    "load_config",
]
