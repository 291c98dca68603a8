"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from api.admin.endpoints import router as admin_router
from api.analytics.endpoints import router as analytics_router
from api.auth.endpoints import router as auth_router
from api.bookings.endpoints import router as bookings_router
from api.bookings.fastpath import ReserveFastPath
from api.checkin.endpoints import router as checkin_router
from api.events.endpoints import router as events_router
from api.health.endpoints import router as health_router
from api.metrics import ObservabilityMiddleware
from api.metrics import router as metrics_router
from api.notifications.endpoints import router as notifications_router
from api.payments.endpoints import router as payments_router
from api.problems import document_common_problems, install_problem_handlers
from api.search.endpoints import router as search_router
from api.support.endpoints import router as support_router
from api.tickets.endpoints import router as tickets_router
from api.users.endpoints import router as users_router
from api.waitlist.endpoints import router as waitlist_router
from evently.infra.logging import configure_logging
from evently.infra.resources import Resources, open_resources
from evently.security import use_password_profile
from evently.settings import Settings, get_settings
from workflows.connection import TemporalClient, connect

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    """Every resource router under /api/v1; feature modules register here."""
    router = APIRouter(prefix=API_PREFIX)
    # before events: GET /events/{id}.ics must be matched before GET /events/{id}
    router.include_router(tickets_router)
    # feature routers, one line each (keep this list sorted)
    router.include_router(admin_router)
    router.include_router(analytics_router)
    router.include_router(auth_router)
    router.include_router(bookings_router)
    router.include_router(checkin_router)
    router.include_router(events_router)
    router.include_router(notifications_router)
    router.include_router(payments_router)
    router.include_router(search_router)
    router.include_router(support_router)
    router.include_router(users_router)
    router.include_router(waitlist_router)
    return router


def create_app(
    settings: Settings | None = None,
    resources: Resources | None = None,
    temporal: TemporalClient | None = None,
) -> FastAPI:
    """Build the app. Pass ``resources`` and ``temporal`` to share clients (tests); else the
    lifespan opens them."""
    settings = settings or get_settings()
    use_password_profile(settings.password_hash_profile)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if resources is not None and temporal is not None:
            yield
            return
        configure_logging(settings)
        async with open_resources(settings) as res:
            app.state.resources = res
            # lazy: the API starts (and reports not-ready) while Temporal is still down
            app.state.temporal = await connect(
                res.endpoints.temporal_address, settings.temporal_namespace, lazy=True
            )
            yield

    app = FastAPI(
        title="Evently",
        version="0.1.0",
        description="Event ticketing: hold seats, pay within the window, never oversold.",
        lifespan=lifespan,
    )
    if resources is not None and temporal is not None:
        app.state.resources = resources
        app.state.temporal = temporal
    install_problem_handlers(app)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.add_middleware(ReserveFastPath)  # sold-out/overloaded reserve answers, no FastAPI stack
    app.add_middleware(ObservabilityMiddleware)  # outermost: request id, metrics, access log
    app.include_router(api_router())
    document_common_problems(app)
    return app
