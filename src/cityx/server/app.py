"""The FastAPI application: JSON under ``/api/v1``, every route behind the guard.

The OpenAPI document is at ``/api/v1/openapi.json`` (public: it describes the
API, not its data); there are no HTML pages and no interactive docs. Errors
map to status codes in one place: bad input 422, a store that is unreachable
or busy 503, a model that failed 502.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cityx import __version__
from cityx.core import CityxError, InputError, StoreError
from cityx.store import Store
from cityx.targets import Limits

from .access import Hardening, LoginLimiter, ServerState
from .config import ServerConfig
from .console import router as console_router
from .live import LiveRuns
from .live_api import LiveError
from .monitor import ExtractionMonitor
from .policy import API as PREFIX
from .queue import JobRunner
from .routes import router
from .scoring import ModelPool


def create_app(config: ServerConfig, store: Store) -> FastAPI:
    """The app, serving ``store``; the caller owns the store and closes it."""
    limits = Limits(memory_mb=config.worker_memory_mb, call_timeout_s=config.call_timeout_s)
    st = ServerState(
        config=config,
        store=store,
        pool=ModelPool(
            limits=limits,
            contain=config.contain,
            realm=str(config.data_dir.resolve()),
            nproc=config.worker_nproc,
        ),
        monitor=ExtractionMonitor(min_queries=config.monitor_min_queries),
        limiter=LoginLimiter(config.login_per_minute),
    )

    runner = st.jobs = JobRunner(config, store)

    live = st.live = LiveRuns(store, config, city_key=st.city_key)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        live.recover()
        yield
        live.close()
        runner.close()
        st.pool.close()

    app = FastAPI(
        title="CityXchange",
        version=__version__,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.cityx = st
    # Added as they are, not through include_router: this FastAPI nests an included
    # router, and a nested route's path loses the /api/v1 prefix the policy is keyed on.
    app.router.routes.extend(router.routes)
    app.router.routes.extend(console_router.routes)  # the web console (docs/console.md)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(LiveError)
    async def _live_error(_request: Request, exc: LiveError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(CityxError)
    async def _cityx_error(_request: Request, exc: CityxError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=502)

    app.add_middleware(Hardening, config=config)
    return app


__all__ = ["create_app"]
