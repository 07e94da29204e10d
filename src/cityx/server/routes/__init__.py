"""The API's routes, all under ``/api/v1`` and all behind the guard.

One router carries the guard as a dependency, so no route can be added
without it; each module adds its routes to its own router, included here.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..access import guard
from ..policy import API
from . import identity, models, submissions

router = APIRouter(prefix=API, dependencies=[Depends(guard)])
router.include_router(identity.router)
router.include_router(submissions.router)
router.include_router(models.router)

__all__ = ["router"]
