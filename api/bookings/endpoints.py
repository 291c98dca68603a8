"""Buyers' bookings: reserve, pay, read, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from api.auth.deps import CurrentUser, RateLimiterDep, TokenClaims
from api.bookings import service
from api.bookings.schemas import (
    BookingOut,
    BookingPage,
    CancelResponse,
    ConfirmRequest,
    ConfirmResponse,
    PaymentPending,
    ReserveRequest,
    ReserveResponse,
)
from api.deps import ResourcesDep, SessionDep, TemporalDep
from api.http.links import PageLinksDep
from api.problems import problem_responses
from evently import bookings
from evently.db.models import Booking, User
from evently.enums import PayOutcome, Role
from evently.errors import (
    BookingNotActive,
    BookingNotFound,
    BookingNotHeld,
    EventNotFound,
    EventNotOnSale,
    HoldExpired,
    IdempotencyKeyReused,
    Overloaded,
    PaymentDeclined,
    PaymentUnavailable,
    QuantityTooLarge,
    ReleaseRefused,
    ReserveTimeout,
    SoldOut,
    TooManyRequests,
    WorkflowNotRunning,
    WorkflowTimeout,
)
from evently.infra import metrics
from evently.inventory.gate import Gate
from evently.organizations import organization_of_event
from workflows.booking.contract import booking_workflow_id

router = APIRouter(tags=["bookings"])
MAX_PAGE = 100_000


def admission(request: Request) -> service.Admission:
    """The process's reserve in-flight cap (shared with the fast path)."""
    state = request.app.state
    if not hasattr(state, "reserve_admission"):
        state.reserve_admission = service.Admission(state.resources.settings.reserve_max_in_flight)
    found: service.Admission = state.reserve_admission
    return found


def gate(request: Request) -> Gate:
    state = request.app.state
    if not hasattr(state, "gate"):
        state.gate = Gate(state.resources.redis)
    found: Gate = state.gate
    return found


@router.post(
    "/bookings/reserve",
    status_code=201,
    response_model=ReserveResponse,
    responses=problem_responses(
        SoldOut,
        EventNotFound,
        EventNotOnSale,
        IdempotencyKeyReused,
        QuantityTooLarge,
        TooManyRequests,
        Overloaded,
        ReserveTimeout,
    ),
)
async def reserve(
    body: ReserveRequest,
    request: Request,
    user: TokenClaims,
    res: ResourcesDep,
    temporal: TemporalDep,
    limiter: RateLimiterDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> ReserveResponse:
    """Hold seats. Answers 201 held (pay before `hold_expires_at`) or 409 `sold_out` in one
    request. Retrying with the same `Idempotency-Key` returns the same booking. Beyond the
    in-flight cap: 503 `overloaded` with Retry-After (a sold-out event still answers 409)."""
    if body.quantity > res.settings.max_tickets_per_booking:
        raise QuantityTooLarge(
            f"quantity: at most {res.settings.max_tickets_per_booking} tickets per booking.",
        )
    hit = await limiter.hit(f"reserve:user:{user.user_id}", res.settings.reserve_rate_limit, 60)
    if hit.exceeded:
        metrics.RESERVE_REQUESTS.labels(outcome="rate_limited").inc()
        raise TooManyRequests(
            "Too many reservations from this account; retry shortly.",
            retry_after=hit.reset_seconds,
        )
    with metrics.RESERVE_SECONDS.time():
        result = await service.reserve(
            res,
            temporal,
            gate(request),
            admission(request),
            user_id=user.user_id,
            event_id=body.event_id,
            quantity=body.quantity,
            idempotency_key=idempotency_key,
        )
    return ReserveResponse(
        booking_id=result.booking_id,
        status=result.status,
        hold_expires_at=result.hold_expires_at,
        amount=result.amount,
        currency=result.currency,
        workflow_id=booking_workflow_id(result.booking_id),
    )


async def _own_booking(session: SessionDep, user: User, booking_id: uuid.UUID) -> Booking:
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or booking.user_id != user.id:
        raise BookingNotFound()
    return booking


@router.post(
    "/bookings/confirm",
    response_model=ConfirmResponse,
    responses={
        202: {
            "model": PaymentPending,
            "description": "The payment waits for the buyer (3-D Secure: finish it with "
            "`client_secret` in Stripe.js) or for the provider; the hold keeps running and the "
            "provider's webhook confirms the booking.",
        },
        **problem_responses(
            BookingNotFound,
            PaymentDeclined,
            PaymentUnavailable,
            HoldExpired,
            BookingNotHeld,
            ReleaseRefused,
            WorkflowNotRunning,
            WorkflowTimeout,
        ),
    },
)
async def confirm(
    body: ConfirmRequest, user: CurrentUser, session: SessionDep, temporal: TemporalDep
) -> ConfirmResponse | JSONResponse:
    """Pay for a held booking: 200 confirmed, 202 requires_action (3-D Secure: hand
    `client_secret` to Stripe.js; the hold keeps running and the webhook confirms) or
    processing, 402 declined (the hold stays), 409 hold_expired."""
    booking = await _own_booking(session, user, body.booking_id)
    await session.commit()  # release the connection: the payment takes a while
    result = await service.pay(temporal, booking, body.payment_method)
    if result.status == PayOutcome.CONFIRMED:
        return ConfirmResponse(booking_id=booking.id, status="confirmed")
    pending = PaymentPending(
        booking_id=booking.id,
        status=result.status,
        client_secret=result.client_secret,
        hold_expires_at=booking.hold_expires_at,
    )
    return JSONResponse(pending.model_dump(mode="json"), status_code=202)


@router.get(
    "/bookings/{booking_id}",
    response_model=BookingOut,
    responses=problem_responses(BookingNotFound),
)
async def get_booking(booking_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Booking:
    """The booking's state; visible to its owner, support and admins (others get 404)."""
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or (
        booking.user_id != user.id and user.role not in (Role.ADMIN, Role.SUPPORT)
    ):
        raise BookingNotFound()
    return booking


@router.delete(
    "/bookings/{booking_id}",
    response_model=CancelResponse,
    responses=problem_responses(
        BookingNotFound, BookingNotActive, ReleaseRefused, WorkflowNotRunning, WorkflowTimeout
    ),
)
async def cancel_booking(
    booking_id: uuid.UUID,
    user: CurrentUser,
    session: SessionDep,
    temporal: TemporalDep,
    res: ResourcesDep,
) -> CancelResponse:
    """Cancel: a held booking is released; a confirmed one is refunded, then released."""
    booking = await _own_booking(session, user, booking_id)
    await session.commit()
    result = await service.cancel(
        temporal,
        booking,
        f"user:{user.id}",
        organization_id=await organization_of_event(res.engine, booking.event_id),
    )
    return CancelResponse(
        booking_id=booking.id, status=result.booking_status, refunded=result.refunded
    )


@router.get("/users/bookings", response_model=BookingPage)
async def my_bookings(
    user: CurrentUser,
    session: SessionDep,
    links: PageLinksDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BookingPage:
    """Your bookings, newest first."""
    items, total = await bookings.list_user_bookings(session, user.id, page=page, limit=limit)
    links.set(page, limit, total, max_page=MAX_PAGE)
    return BookingPage(
        items=[BookingOut.model_validate(b) for b in items], total=total, page=page, limit=limit
    )
