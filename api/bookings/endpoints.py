"""Buyers' bookings: reserve, pay, read, cancel."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from api.auth.deps import CurrentUser, OptionalClaims, RateLimiterDep, client_ip
from api.bookings import service
from api.bookings.access import BookingUser, KeyHeader, user_for_booking
from api.bookings.schemas import (
    AwaitingTransfer,
    BankAccountOut,
    BookingAccess,
    BookingLineOut,
    BookingOut,
    BookingPage,
    CancelLinesRequest,
    CancelLinesResponse,
    CancelResponse,
    ConfirmRequest,
    ConfirmResponse,
    PaymentPending,
    PendingBooking,
    PriceOut,
    ReserveRequest,
    ReserveResponse,
    SeatOut,
)
from api.deps import ResourcesDep, SessionDep, SettingsDep, TemporalDep, end_transaction
from api.http.links import PageLinksDep
from api.problems import problem_responses
from api.waitingroom.endpoints import waiting_room
from evently import accounts, bank_transfer, bookings, invoices, pricing, questions, ticket_types
from evently.db.models import Booking, User
from evently.enums import BookingStatus, PayOutcome, Role
from evently.errors import (
    AdmissionInvalid,
    AdmissionRequired,
    AnswersRequired,
    BankTransferNotOffered,
    BookingNotActive,
    BookingNotFound,
    BookingNotHeld,
    DuplicateLines,
    EventNotFound,
    EventNotOnSale,
    HoldExpired,
    IdempotencyKeyReused,
    LinesNotCancellable,
    NotAGuestBooking,
    Overloaded,
    PaymentDeclined,
    PaymentUnavailable,
    PromoCodeExpired,
    PromoCodeNotApplicable,
    PromoCodeUnknown,
    PromoCodeUsedUp,
    QuantityTooLarge,
    RefundNotAllowed,
    ReleaseRefused,
    SalesClosed,
    SeatsInvalid,
    SeatsTaken,
    SoldOut,
    TicketCheckedIn,
    TicketTypeNotFound,
    TicketTypeSoldOut,
    TooManyOfType,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    WorkflowNotRunning,
    WorkflowTimeout,
)
from evently.infra import metrics
from evently.inventory import reserved
from evently.inventory.gate import Gate
from evently.inventory.types import Reservation, ReserveLine
from evently.organizations import organization_of_event
from workflows.booking import client as booking_client
from workflows.booking.contract import booking_workflow_id

router = APIRouter(tags=["bookings"])
MAX_PAGE = 100_000


def reserve_valve(request: Request) -> service.ReserveValve:
    """The process's reserve in-flight cap (shared with the fast path)."""
    state = request.app.state
    if not hasattr(state, "reserve_valve"):
        settings = state.resources.settings
        state.reserve_valve = service.ReserveValve(
            settings.reserve_max_in_flight,
            max_waiting=settings.reserve_max_waiting,
            max_wait=settings.reserve_max_wait_seconds,
        )
    found: service.ReserveValve = state.reserve_valve
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
    responses={
        202: {
            "model": PendingBooking | AwaitingTransfer,
            "description": "The reserve was sent but its answer is late (a slow or failing "
            "server): the booking may still be held. Poll `GET /bookings/{booking_id}` after "
            "`Retry-After`, or retry with the same `Idempotency-Key`. Or, with "
            "`payment_method: bank_transfer`: `awaiting_transfer`, the seats held until "
            "`pay_by` (no `Retry-After`).",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        **problem_responses(
            SoldOut,
            EventNotFound,
            EventNotOnSale,
            IdempotencyKeyReused,
            QuantityTooLarge,
            TooManyRequests,
            Overloaded,
            AdmissionRequired,
            AdmissionInvalid,
            TicketTypeSoldOut,
            TicketTypeNotFound,
            SalesClosed,
            TooManyOfType,
            DuplicateLines,
            PromoCodeUnknown,
            PromoCodeExpired,
            PromoCodeUsedUp,
            PromoCodeNotApplicable,
            BankTransferNotOffered,
            SeatsTaken,
            SeatsInvalid,
            Unprocessable,
        ),
    },
)
async def reserve(
    body: ReserveRequest,
    request: Request,
    claims: OptionalClaims,
    res: ResourcesDep,
    temporal: TemporalDep,
    limiter: RateLimiterDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
    admission_token: Annotated[
        str | None,
        Header(
            alias="Admission-Token",
            min_length=1,
            max_length=300,
            description="From the waiting room once admitted (GET /events/{id}/queue/"
            "{queue_ticket}); required while the event's on-sale is queued.",
        ),
    ] = None,
) -> ReserveResponse | JSONResponse:
    """Hold seats. Answers 201 held (pay before `hold_expires_at`) or 409 `sold_out` in one
    request; 202 `pending` with the booking id when the answer is late (never a bare error
    for a booking that may exist). Retrying with the same `Idempotency-Key` returns the same
    booking. Beyond the in-flight cap: 503 `overloaded` with Retry-After (a sold-out event
    still answers 409). While the on-sale is queued: 403 `admission_required` without the
    waiting room's `Admission-Token` (one booking per admission).

    **Guest checkout** (no token): send `buyer: {email, name}`; the booking belongs to that
    email and the answer carries `access_key` / `access_url`, which open it without an account
    (header `Evently-Booking-Key` or `?key=`). The same limits apply (per account of the email,
    plus per client address), and the same waiting room (docs/buyers.md)."""
    lines = body.lines or []
    if len({x.ticket_type_id for x in lines}) < len(lines):
        raise DuplicateLines()
    if body.total > res.settings.max_tickets_per_booking:
        raise QuantityTooLarge(
            f"quantity: at most {res.settings.max_tickets_per_booking} tickets per booking.",
        )
    if claims is not None and body.buyer is not None:
        raise Unprocessable("buyer: only for a guest checkout, without a bearer token.")
    guest_email: str | None = None
    if claims is None:
        if body.buyer is None:
            raise Unauthorized(
                "Send 'Authorization: Bearer <access token>', or buyer {email, name} to check "
                "out as a guest."
            )
        await limiter.enforce(
            f"reserve:guest:{client_ip(request)}",
            res.settings.reserve_rate_limit,
            60,
            detail="Too many reservations from this address; retry shortly.",
        )
        user_id = await service.guest_buyer(res, body.buyer.email, body.buyer.name)
        guest_email = accounts.normalize_email(body.buyer.email)
    else:
        user_id = claims.user_id
    transfer = None
    if body.payment_method == "bank_transfer":
        transfer = await bank_transfer.offer(res.engine, body.event_id)
        if transfer is None:
            raise BankTransferNotOffered("This event does not take bank transfers; pay by card.")
    hit = await limiter.hit(f"reserve:user:{user_id}", res.settings.reserve_rate_limit, 60)
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
            reserve_valve(request),
            user_id=user_id,
            event_id=body.event_id,
            quantity=body.total,
            idempotency_key=idempotency_key,
            room=waiting_room(request),
            admission_token=admission_token,
            lines=None
            if body.lines is None
            else [
                ReserveLine(
                    ticket_type_id=x.ticket_type_id, quantity=x.quantity, together=x.together
                )
                for x in body.lines
            ],
            promo_code=body.promo_code,
            guest_email=guest_email,
            transfer=transfer,
            seat_ids=body.seats,
        )
    key = url = None
    if claims is None:  # a guest: the key to the booking
        key, url = await service.guest_access(res, result.booking_id, user_id)
    if isinstance(result, service.Pending):
        return pending_answer(
            result.booking_id, result.event_id, result.retry_after, access=(key, url)
        )
    if transfer is not None and result.status == BookingStatus.HELD:
        return await _awaiting_transfer(res, result, transfer, (key, url))
    return ReserveResponse(
        booking_id=result.booking_id,
        status=result.status,
        hold_expires_at=result.hold_expires_at,
        amount=result.amount,
        discount=result.discount,
        currency=result.currency,
        workflow_id=booking_workflow_id(result.booking_id),
        access_key=key,
        access_url=url,
        price=PriceOut.model_validate(
            result.price or pricing.simple_answer(result.amount, result.discount, result.currency)
        ),
        seats=[SeatOut.model_validate(x.model_dump()) for x in result.seats],
    )


async def _awaiting_transfer(
    res: ResourcesDep,
    result: Reservation,
    transfer: bank_transfer.Offer,
    access: tuple[str | None, str | None],
) -> JSONResponse:
    reference = await bank_transfer.reference_of(res.engine, result.booking_id)
    # both set by the reserve of a bank-transfer hold
    assert reference is not None
    assert result.hold_expires_at is not None
    body = AwaitingTransfer(
        booking_id=result.booking_id,
        pay_by=result.hold_expires_at,
        amount=result.amount,
        discount=result.discount,
        currency=result.currency,
        payment_reference=reference,
        bank_account=BankAccountOut(
            account_holder=transfer.account.account_holder,
            iban=transfer.account.iban,
            bic=transfer.account.bic,
        ),
        workflow_id=booking_workflow_id(result.booking_id),
        access_key=access[0],
        access_url=access[1],
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=202)


def pending_answer(
    booking_id: uuid.UUID,
    event_id: uuid.UUID,
    retry_after: int,
    *,
    access: tuple[str | None, str | None] = (None, None),
) -> JSONResponse:
    body = PendingBooking(
        booking_id=booking_id,
        event_id=event_id,
        workflow_id=booking_workflow_id(booking_id),
        retry_after_seconds=retry_after,
        access_key=access[0],
        access_url=access[1],
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202, headers={"Retry-After": str(retry_after)}
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
            Unauthorized,
            AnswersRequired,
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
    body: ConfirmRequest,
    claims: OptionalClaims,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    key: KeyHeader = None,
) -> ConfirmResponse | JSONResponse:
    """Pay for a held booking: 200 confirmed, 202 requires_action (3-D Secure: hand
    `client_secret` to Stripe.js; the hold keeps running and the webhook confirms) or
    processing, 402 declined (the hold stays), 409 hold_expired. A guest sends the booking's
    access key (`Evently-Booking-Key`) instead of a token."""
    user = await user_for_booking(session, claims, key, body.booking_id)
    booking = await _own_booking(session, user, body.booking_id)
    await questions.require_answers(session, booking)  # 422 answers_required (issue 32)
    if body.billing is not None:  # issue 31: printed on the invoice the confirmation issues
        await invoices.set_billing(session, booking.id, body.billing.model_dump())
    await end_transaction(session)  # release the connection: the payment takes a while
    result = await service.pay(session, temporal, settings, booking, body.payment_method)
    if result.status == PayOutcome.CONFIRMED:
        return ConfirmResponse(booking_id=booking.id, status=BookingStatus.CONFIRMED)
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
    responses={
        202: {
            "model": PendingBooking,
            "description": "A reservation still in flight (its reserve answered 202): poll "
            "again after `Retry-After`.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
        **problem_responses(BookingNotFound),
    },
)
async def get_booking(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep, temporal: TemporalDep
) -> BookingOut | JSONResponse:
    """The booking's state; visible to its owner, support and admins (others get 404). A
    reservation still in flight (no row yet, its workflow running) answers 202 `pending`."""
    staff = user.role in (Role.ADMIN, Role.SUPPORT)
    booking = await bookings.get_booking(session, booking_id)
    if booking is not None and (booking.user_id == user.id or staff):
        return (await with_lines(session, [booking]))[0]
    if booking is None:
        await end_transaction(session)  # hand the connection back before asking Temporal
        found = await booking_client.in_flight(temporal, booking_id)
        if found is not None and (found[0] == user.id or staff):
            return pending_answer(booking_id, found[1], retry_after=2)
    raise BookingNotFound()


@router.delete(
    "/bookings/{booking_id}",
    response_model=CancelResponse,
    responses=problem_responses(
        BookingNotFound,
        BookingNotActive,
        RefundNotAllowed,
        TicketCheckedIn,
        ReleaseRefused,
        WorkflowNotRunning,
        WorkflowTimeout,
    ),
)
async def cancel_booking(
    booking_id: uuid.UUID,
    user: BookingUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    res: ResourcesDep,
) -> CancelResponse:
    """Cancel: a held booking is released; a confirmed one is refunded, then released —
    within the event's `refund_policy` (else 409 `refund_not_allowed`, the policy in the
    body), and never when one of its tickets was checked in (409 `ticket_checked_in`)."""
    booking = await _own_booking(session, user, booking_id)
    await service.check_buyer_refund(session, booking)
    result = await service.refund_whole(
        session,
        temporal,
        settings,
        booking,
        f"user:{user.id}",
        organization_id=await organization_of_event(res.engine, booking.event_id),
    )
    return CancelResponse(
        booking_id=booking.id, status=result.booking_status, refunded=result.refunded
    )


# what a partial cancellation can answer (the buyer's route and support's, api/support)
CANCEL_LINES_PROBLEMS = (
    BookingNotFound,
    BookingNotActive,
    LinesNotCancellable,
    TicketCheckedIn,
    DuplicateLines,
    ReleaseRefused,
    WorkflowNotRunning,
    WorkflowTimeout,
)


@router.post(
    "/bookings/{booking_id}/cancel-lines",
    response_model=CancelLinesResponse,
    responses=problem_responses(*CANCEL_LINES_PROBLEMS, RefundNotAllowed),
)
async def cancel_lines(
    booking_id: uuid.UUID,
    body: CancelLinesRequest,
    user: BookingUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    res: ResourcesDep,
) -> CancelLinesResponse:
    """Cancel part of a confirmed booking: that part is refunded (net of its share of the
    discount), its seats go back on sale (or to the waitlist) and exactly those tickets are
    revoked; the rest stays confirmed. Lines covering every seat left cancel the booking.
    Within the event's `refund_policy` (409 `refund_not_allowed`); only unused tickets are
    refunded (409 `ticket_checked_in` when a line has too few)."""
    booking = await _own_booking(session, user, booking_id)
    await service.check_buyer_refund(session, booking)
    return await cancel_lines_answer(
        session,
        temporal,
        settings,
        res,
        booking,
        body,
        f"user:{user.id}",
        "lines cancelled by buyer",
    )


async def cancel_lines_answer(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    res: ResourcesDep,
    booking: Booking,
    body: CancelLinesRequest,
    actor: str,
    reason: str,
) -> CancelLinesResponse:
    """The buyer's and support's partial cancellation (api/support reuses it)."""
    wanted = {x.ticket_type_id: x.quantity for x in body.lines}
    if len(wanted) < len(body.lines):
        raise DuplicateLines()
    change, result, amount = await service.cancel_lines(
        session,
        temporal,
        settings,
        booking,
        wanted,
        actor,
        reason=reason,
        organization_id=await organization_of_event(res.engine, booking.event_id),
    )
    return CancelLinesResponse(
        booking_id=booking.id,
        status=result.booking_status,
        change=change,
        refunded=result.refunded,
        refund_amount=amount,
    )


@router.get("/users/bookings", response_model=BookingPage)
async def my_bookings(
    user: CurrentUser,
    session: SessionDep,
    links: PageLinksDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BookingPage:
    """Your bookings, newest first. Bookings made as a guest with your email are listed once
    your email is verified."""
    items, total = await bookings.list_user_bookings(
        session,
        user.id,
        page=page,
        limit=limit,
        with_guest_bookings=user.email_verified_at is not None,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return BookingPage(
        items=await with_lines(session, list(items)), total=total, page=page, limit=limit
    )


@router.post(
    "/bookings/{booking_id}/access-key",
    response_model=BookingAccess,
    responses=problem_responses(BookingNotFound, NotAGuestBooking),
)
async def rotate_access_key(
    booking_id: uuid.UUID, user: BookingUser, session: SessionDep, settings: SettingsDep
) -> BookingAccess:
    """A guest booking's new access key and link; every earlier key of the booking stops
    working (a forwarded or leaked link is revoked this way). With the current key or the
    owning (verified) account's token."""
    booking = await _own_booking(session, user, booking_id)
    key, url = await service.rotate_access(session, settings, booking)
    return BookingAccess(booking_id=booking.id, access_key=key, access_url=url)


_BUILT = ("lines", "price", "seats")


async def with_lines(session: SessionDep, found: list[Booking]) -> list[BookingOut]:
    """The bookings with their lines (ticket types, unit prices, discounts)."""
    lines = await ticket_types.booking_lines(session, [b.id for b in found])
    seats = await reserved.seats_of_many(await session.connection(), [b.id for b in found])
    out = []
    for b in found:
        # ``Booking.price`` holds the frozen inputs, not the answer: built below
        fields = {k: getattr(b, k) for k in BookingOut.model_fields if k not in _BUILT}
        item = BookingOut.model_validate(fields)
        item.seats = [SeatOut.model_validate(x.model_dump()) for x in seats[b.id]]
        item.lines = [
            BookingLineOut(
                ticket_type_id=line.ticket_type_id,
                name=name,
                quantity=line.quantity,
                cancelled=line.cancelled,
                unit_price=line.unit_price,
                discount=line.discount,
                total=ticket_types.line_net(line, line.quantity - line.cancelled),
            )
            for line, name in lines[b.id]
        ]
        kept = {str(line.ticket_type_id): line.quantity - line.cancelled for line, _ in lines[b.id]}
        item.price = PriceOut.model_validate(
            pricing.answer_of(b.price, kept, b.amount, b.discount, b.currency)
        )
        out.append(item)
    return out
