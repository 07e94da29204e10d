"""The one router every route is added to: prefixed ``/api/v1``, guarded.

The guard is a dependency of the router itself, so a route added here cannot
go without it; routes carry their full path (``/api/v1/...``), which is what
the policy table is keyed on.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..access import guard
from ..policy import API

router = APIRouter(prefix=API, dependencies=[Depends(guard)])

__all__ = ["router"]
