"""Buyers' bookings: reserve, pay, read, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from api.auth.deps import CurrentUser, RateLimiterDep, TokenClaims
from api.bookings.schemas import (
    BookingOut,
    BookingPage,
    CancelResponse,
    ConfirmRequest,
    ConfirmResponse,
    ReserveRequest,
    ReserveResponse,
)
from api.deps import ResourcesDep, SessionDep
from evently import bookings, metrics
from evently.db.models import Booking, User
from evently.errors import (
    Conflict,
    NotFound,
    PaymentRequired,
    TooManyRequests,
    Unprocessable,
)
from evently.inventory import Gate
from workflows.booking_models import booking_workflow_id

router = APIRouter(tags=["bookings"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "malformed request"},
    401: {"description": "not authenticated"},
    404: {"description": "unknown booking or event"},
    409: {"description": "sold out, hold expired, or not on sale"},
    429: {"description": "too many reservations from this account"},
    422: {"description": "invalid body"},
    503: {"description": "overloaded or a backing service is down"},
}


def _admission(request: Request) -> bookings.Admission:
    state = request.app.state
    if not hasattr(state, "reserve_admission"):
        state.reserve_admission = bookings.Admission(state.resources.settings.reserve_max_in_flight)
    admission: bookings.Admission = state.reserve_admission
    return admission


def _gate(request: Request) -> Gate:
    state = request.app.state
    if not hasattr(state, "gate"):
        state.gate = Gate(state.resources.redis)
    gate: Gate = state.gate
    return gate


@router.post(
    "/bookings/reserve", status_code=201, response_model=ReserveResponse, responses=PROBLEMS
)
async def reserve(
    body: ReserveRequest,
    request: Request,
    user: TokenClaims,
    res: ResourcesDep,
    limiter: RateLimiterDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> ReserveResponse:
    """Hold seats. Answers 201 held (pay before `hold_expires_at`) or 409 `sold_out` in one
    request. Retrying with the same `Idempotency-Key` returns the same booking. Beyond the
    in-flight cap: 503 `overloaded` with Retry-After (a sold-out event still answers 409)."""
    if body.quantity > res.settings.max_tickets_per_booking:
        raise Unprocessable(
            f"quantity: at most {res.settings.max_tickets_per_booking} tickets per booking.",
            code="quantity_too_large",
        )
    retry_after = await limiter.hit(
        f"reserve:user:{user.user_id}", res.settings.reserve_rate_limit, 60
    )
    if retry_after is not None:
        metrics.RESERVE_REQUESTS.labels(outcome="rate_limited").inc()
        raise TooManyRequests(
            "Too many reservations from this account; retry shortly.", retry_after=retry_after
        )
    with metrics.RESERVE_SECONDS.time():
        result = await bookings.reserve(
            res,
            _gate(request),
            _admission(request),
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
        raise NotFound("No such booking.", code="booking_not_found")
    return booking


@router.post("/bookings/confirm", response_model=ConfirmResponse, responses=PROBLEMS)
async def confirm(
    body: ConfirmRequest, user: CurrentUser, session: SessionDep, res: ResourcesDep
) -> ConfirmResponse:
    """Pay for a held booking: 200 confirmed, 402 declined (the hold stays), 409 hold_expired."""
    booking = await _own_booking(session, user, body.booking_id)
    await session.commit()  # release the connection: the payment takes a while
    if booking.status == "confirmed":
        return ConfirmResponse(booking_id=booking.id, status="confirmed")
    if booking.status in ("expired", "cancelled"):
        raise Conflict("The hold on this booking has ended.", code="hold_expired")
    if booking.status != "held":
        raise Conflict("This booking is not held.", code="booking_not_held")
    result = await bookings.pay(res.temporal, booking.id, body.payment_method)
    if result.status == "confirmed":
        return ConfirmResponse(booking_id=booking.id, status="confirmed")
    if result.status == "declined":
        raise PaymentRequired(
            f"The payment was declined ({result.detail}); the hold stays until it ends.",
            code="payment_declined",
        )
    if result.status == "hold_expired":
        raise Conflict("The hold on this booking has ended.", code="hold_expired")
    raise Conflict("This booking is not held.", code="booking_not_held")


@router.get("/bookings/{booking_id}", response_model=BookingOut, responses=PROBLEMS)
async def get_booking(booking_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Booking:
    """The booking's state; visible to its owner, support and admins (others get 404)."""
    booking = await bookings.get_booking(session, booking_id)
    if booking is None or (booking.user_id != user.id and user.role not in ("admin", "support")):
        raise NotFound("No such booking.", code="booking_not_found")
    return booking


@router.delete("/bookings/{booking_id}", response_model=CancelResponse, responses=PROBLEMS)
async def cancel_booking(
    booking_id: uuid.UUID, user: CurrentUser, session: SessionDep, res: ResourcesDep
) -> CancelResponse:
    """Cancel: a held booking is released; a confirmed one is refunded, then released."""
    booking = await _own_booking(session, user, booking_id)
    await session.commit()
    if booking.status not in ("held", "confirmed"):
        raise Conflict(f"This booking is already {booking.status}.", code="booking_not_active")
    result = await bookings.cancel(
        res.temporal, booking.id, f"user:{user.id}", "cancelled by buyer"
    )
    if result.booking_status not in ("cancelled", "expired"):
        raise Conflict(f"This booking is {result.booking_status}.", code="booking_not_active")
    return CancelResponse(
        booking_id=booking.id, status=result.booking_status, refunded=result.refunded
    )


@router.get("/users/bookings", response_model=BookingPage, responses=PROBLEMS)
async def my_bookings(
    user: CurrentUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BookingPage:
    """Your bookings, newest first."""
    items, total = await bookings.list_user_bookings(session, user.id, page=page, limit=limit)
    return BookingPage(
        items=[BookingOut.model_validate(b) for b in items], total=total, page=page, limit=limit
    )
