"""The API's routes, all under ``/api/v1`` and all behind the guard (see :mod:`._router`).

Importing the route modules adds their routes to the one router.
"""

from __future__ import annotations

from . import identity, jobs, models, runs, submissions
from ._router import router

ROUTE_MODULES = (identity, models, submissions, jobs, runs)

__all__ = ["ROUTE_MODULES", "router"]
