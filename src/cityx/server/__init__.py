"""The CityXchange server: one place where the regulator, vendors, overseers and auditors work.

A FastAPI app (:func:`create_app`) on uvicorn (:func:`serve`), on the same
store as the command line. Identities (organisations, users with roles,
tokens), query budgets and rulings live in the store; the policy
(:mod:`.policy`) is one typed table enforced by one guard on every route;
vendors' models answer through their isolated workers, metered and watched
by the extraction monitor (:mod:`.monitor`). See docs/server.md.
"""

from .app import create_app
from .config import ServerConfig, load_config
from .demo import load_demo
from .identity import Principal, add_user, authenticate
from .policy import ROLE_PERMISSIONS, ROUTE_RULES, Permission, Role
from .run import serve

__all__ = [
    "ROLE_PERMISSIONS",
    "ROUTE_RULES",
    "Permission",
    "Principal",
    "Role",
    "ServerConfig",
    "add_user",
    "authenticate",
    "create_app",
    "load_config",
    "load_demo",
    "serve",
]
