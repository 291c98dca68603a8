"""The reserve path (waiting-room admission → reserve valve → sold-out gate → booking
workflow) and the buyer's commands on a booking, in terms of the core (evently/) and the
booking workflow's client."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import end_transaction
from evently import (
    accounts,
    bank_transfer,
    booking_changes,
    booking_keys,
    events,
    refund_policy,
    seating,
    waitingroom,
)
from evently.bookings import booking_id_for
from evently.db.models import Booking
from evently.enums import BookingStatus, EventStatus, PayOutcome, ReserveOutcome
from evently.errors import (
    AdmissionInvalid,
    AdmissionRequired,
    BookingNotActive,
    BookingNotHeld,
    EventlyError,
    EventNotFound,
    EventNotOnSale,
    HoldExpired,
    IdempotencyKeyReused,
    NotAGuestBooking,
    Overloaded,
    PaymentDeclined,
    PaymentUnavailable,
    PromoCodeExpired,
    PromoCodeNotApplicable,
    PromoCodeUnknown,
    PromoCodeUsedUp,
    RefundNotAllowed,
    SalesClosed,
    SeatsInvalid,
    SeatsTaken,
    ServiceUnavailable,
    SoldOut,
    TicketTypeNotFound,
    TicketTypeSoldOut,
    TooManyOfType,
    WorkflowNotRunning,
)
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.inventory import availability
from evently.inventory.gate import Gate, Shape, Taken, Verdict
from evently.inventory.seated import recorded as recorded_booking
from evently.inventory.types import Reservation, ReserveLine
from evently.organizations import organization_of_event
from evently.settings import Settings
from evently.waitingroom import WaitingRoom
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, CancelResult, PayResult
from workflows.connection import TemporalClient


class ReserveValve:
    """The reserve path's in-process valve: a per-process cap on reservations in flight, with
    a short first-come-first-served wait for a slot before shedding. (Not the waiting room's
    admission, :class:`evently.waitingroom.Admission`: that is a buyer's decoded token.)

    At the cap a request waits for a slot (FIFO) at most ``max_wait`` seconds, and at most
    ``max_waiting`` requests wait; beyond either it is shed with a fast 503 + Retry-After.
    Waiting costs a parked coroutine; shedding cost a whole extra request per retry for the
    client and the API (the flash sale shed ~4,400 requests for 500 seats, each retried
    blindly: docs/performance.md). A waiting request has taken no gate seat, so the sold-out
    answers stay true; the first thing it does once admitted is take one (or learn it is
    sold out)."""

    def __init__(self, limit: int, *, max_waiting: int = 0, max_wait: float = 0.0) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.max_wait = max_wait
        self.in_flight = 0
        # (event, turn): a turn resolves True when a slot is handed over, False when the
        # event was found sold out meanwhile (look again before waiting on)
        self._waiters: collections.deque[tuple[uuid.UUID | None, asyncio.Future[bool]]] = (
            collections.deque()
        )
        self.seated = SeatedInFlight()

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def saturated(self) -> bool:
        """No slot and no room to wait for one: a new request is shed at once."""
        return self.full and (self.max_wait <= 0 or len(self._waiters) >= self.max_waiting)

    async def __aenter__(self) -> ReserveValve:
        await self.enter()
        return self

    async def enter(
        self, event_id: uuid.UUID | None = None, still_on_sale: Recheck | None = None
    ) -> None:
        """Take a slot, waiting for one if there is room to wait. At the cap ``still_on_sale``
        is asked first (it raises when the event is sold out); a waiter for ``event_id`` is
        woken when a request finds that event sold out (:meth:`sold_out`), asks again and
        otherwise waits on at the head."""
        if not self.full and not self._waiters:
            self.in_flight += 1
            return
        if still_on_sale is not None:
            await still_on_sale()  # at the cap a sold-out event answers 409: no wait, no shed
        if self.saturated:
            raise self.overloaded()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        front = False
        while True:
            turn: asyncio.Future[bool] = loop.create_future()
            # only a waiter that can look again is woken for a sold-out event
            entry = (event_id if still_on_sale is not None else None, turn)
            if front:
                self._waiters.appendleft(entry)
            else:
                self._waiters.append(entry)
            try:
                async with asyncio.timeout_at(deadline):
                    handed = await turn
            except BaseException as exc:
                if turn.done() and not turn.cancelled() and turn.result():
                    self.leave()  # handed a slot as we gave up: pass it on
                else:
                    turn.cancel()
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(entry)
                if isinstance(exc, TimeoutError):
                    raise self.overloaded() from None
                raise
            if handed:
                return
            assert still_on_sale is not None
            await still_on_sale()  # raises SoldOut: answered at once, not after the wait
            front = True

    async def __aexit__(self, *exc: object) -> None:
        self.leave()

    def leave(self) -> None:
        """Give this slot to the longest waiter, or free it."""
        while self._waiters:
            _, turn = self._waiters.popleft()
            if not turn.done():
                turn.set_result(True)  # in_flight unchanged: the slot changes hands
                return
        self.in_flight -= 1

    def sold_out(self, event_id: uuid.UUID) -> None:
        """A request found ``event_id`` sold out: its waiters look again now instead of
        waiting for a slot only to learn it then."""
        keep: collections.deque[tuple[uuid.UUID | None, asyncio.Future[bool]]] = collections.deque()
        for entry in self._waiters:
            if entry[0] == event_id and not entry[1].done():
                entry[1].set_result(False)
            else:
                keep.append(entry)
        self._waiters = keep

    def overloaded(self) -> Overloaded:
        metrics.RESERVE_REQUESTS.labels(outcome="shed").inc()
        return Overloaded(retry_after=1)


Recheck = Callable[[], Awaitable[None]]

SEATS_WAIT_SECONDS = 2.0  # the longest a request by seat id waits for the reserves before it


class SeatedInFlight:
    """The seated reserves this process has in flight (a gate seat taken, the workflow's
    answer not yet noted), per event, in the order they took their gate seats.

    A request for seats by id waits (at most SEATS_WAIT_SECONDS) for every seated reserve that
    was in flight before it, then looks at the seated notes again (Gate.noted_refused): in a
    rush most buyers by id ask for the same best seats, and the reserve before them is holding
    those seats right now. Before this, such a request went to a workflow of its own to be
    refused there (55 of 69 refusals in a workflow in one counted flash sale). A best-available
    request does not wait (its pick skips what is taken; waiting only held its valve slot);
    it is waited for. The wait is per process: across API replicas the workflow still refuses,
    truthfully, as before (docs/seating.md "Waiting for the reserves in flight")."""

    def __init__(self) -> None:
        self._events: dict[uuid.UUID, dict[int, asyncio.Future[None]]] = {}
        self._turns = 0

    def in_flight(self, event_id: uuid.UUID) -> int:
        return len(self._events.get(event_id, {}))

    @contextlib.contextmanager
    def track(self, event_id: uuid.UUID, by_id: bool) -> Iterator[list[asyncio.Future[None]]]:
        """Count this reserve in flight until the block ends (its answer noted); yields what
        it waits for: the reserves in flight before it when ``by_id``, else none."""
        event = self._events.setdefault(event_id, {})
        earlier = list(event.values()) if by_id else []
        self._turns += 1
        turn = self._turns
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        event[turn] = done
        try:
            yield earlier
        finally:
            done.set_result(None)
            del event[turn]
            if not event:
                del self._events[event_id]


async def _after_earlier(
    gate: Gate, data: BookingInput, shapes: list[Shape], earlier: list[asyncio.Future[None]]
) -> None:
    """Wait for the seated reserves in flight before this one (:class:`SeatedInFlight`; each
    notes its answer before it ends), then refuse this request at the API when the notes now
    refuse it (409 ``seats_taken``), giving its gate seat back; cancelled while waiting, it
    gives it back too."""
    try:
        await asyncio.wait(earlier, timeout=SEATS_WAIT_SECONDS)
        refused_at_gate(await gate.noted_refused(data.event_id, shapes, data.seat_ids))
    except BaseException:  # refused, or cancelled while waiting: no workflow will start
        await gate.give_back_no_hold(data.event_id, data.quantity, data.booking_id)
        raise


def sold_out() -> SoldOut:
    metrics.RESERVE_REQUESTS.labels(outcome="sold_out").inc()
    return SoldOut()


def seats_taken(seats: list[str]) -> SeatsTaken:
    """409 ``seats_taken`` (issue 34): ``seats`` names the asked seats not free, or the
    best-available line with no block left ("2 together")."""
    metrics.RESERVE_REQUESTS.labels(outcome="rejected").inc()
    return SeatsTaken(seats=seats)


def refused_at_gate(found: Taken | None) -> None:
    """Raise the answer of a gate that refused (a look or a take): sold out, or a seated
    request known refused (docs/seating.md "Refused at the API")."""
    if found is None:
        return
    if found.verdict == Verdict.SOLD_OUT:
        raise sold_out()
    if found.verdict == Verdict.SEATS_TAKEN:
        raise seats_taken(list(found.refused))


def shapes_of(
    seated: bool, quantity: int, lines: list[ReserveLine] | None, seat_ids: list[str] | None
) -> list[Shape]:
    """The best-available lines of a seated request (none for seats by id, nor for a
    general-admission event): ``quantity`` alone is one line of any seat, together."""
    if not seated or seat_ids:
        return []
    if lines:
        return [Shape(x.ticket_type_id, x.quantity, x.together) for x in lines]
    return [Shape(None, quantity, True)]


async def _available(res: Resources, gate: Gate, event_id: uuid.UUID) -> int:
    """Postgres, for a missing or suspect gate: 404/409 for unknown or not-on-sale events, else
    the seats on sale now."""
    row = await availability.seats_on_sale(res.engine, event_id)
    if row is None:
        raise EventNotFound()
    if row.status != EventStatus.PUBLISHED:
        await gate.load(event_id, None)
        raise EventNotOnSale()
    return int(row.available)


@dataclass(frozen=True)
class Pending:
    """The reserve was sent but its outcome is not known yet: the booking may be held later."""

    booking_id: uuid.UUID
    event_id: uuid.UUID
    retry_after: int


async def _take(
    res: Resources,
    gate: Gate,
    event_id: uuid.UUID,
    quantity: int,
    booking_id: uuid.UUID,
    idempotent: bool,
    *,
    doubtful: bool = False,
    seated: bool = False,
    shapes: list[Shape] | None = None,
    seat_ids: list[str] | None = None,
) -> Taken | None:
    """A gate seat (OK), or a verdict; a missing counter is loaded from Postgres, and a sold-out
    verdict from a suspect gate is checked against Postgres before it stands. ``doubtful``: a
    request that may be refused for its own lines (Gate.take); ``seated``, ``shapes``,
    ``seat_ids``: a seated request, refused when known refused (Gate.admit)."""

    async def take() -> Taken | None:
        return await gate.admit(
            event_id,
            quantity,
            booking_id,
            idempotent,
            doubtful=doubtful,
            seated=seated,
            shapes=shapes,
            seat_ids=seat_ids,
        )

    taken = await take()
    if taken is not None and taken.verdict == Verdict.MISSING:
        await gate.load(event_id, await _available(res, gate, event_id))
        taken = await take()
    if taken is not None and taken.verdict == Verdict.UNSURE:
        available = await _available(res, gate, event_id)
        if available < quantity:
            return Taken(Verdict.SOLD_OUT)
        # it disagrees with Postgres: rebuild it (no seat was freed: the seated notes stay)
        await gate.forget_counter(event_id)
        await gate.load(event_id, available)
        taken = await take()
        if taken is not None and taken.verdict in (Verdict.UNSURE, Verdict.MISSING):
            return None  # still racing: let the reserve statement decide
    if taken is not None and taken.verdict == Verdict.CLOSED:
        await _available(res, gate, event_id)  # 404 or 409 with the right code
    return taken


SATURATED_SHARE = 0.8  # in-flight reserves at this share of the cap count as saturation


async def admitted(
    settings: Settings,
    room: WaitingRoom,
    valve: ReserveValve,
    *,
    user_id: uuid.UUID | None,
    event_id: uuid.UUID,
    token: str | None,
    guest_email: str | None = None,
) -> waitingroom.Admission | None:
    """The waiting room's step of the reserve path (docs/waiting-room.md): report saturation
    (an ``auto`` queue turns on), then, while the on-sale is queued, insist on a genuine, live
    admission token for this event (and buyer, when known; a guest's — ``guest_email``, the
    normalized email of a guest reserve — must be a guest admission for that email, issue 32).
    Returns the token's admission, or
    None when the reserve may go on without one. Signature and expiry only: no database read,
    and at most one Redis read per process every half second."""
    if valve.in_flight >= SATURATED_SHARE * valve.limit:
        await room.note_saturation(event_id, settings.queue_saturation_seconds, shed=valve.full)
    found: waitingroom.Admission | None = None
    if token is not None and guest_email is not None:
        found = waitingroom.read_guest_admission_token(
            settings.jwt_secret, token, event_id, guest_email
        )
    elif token is not None:
        found = waitingroom.read_admission_token(settings.jwt_secret, token, event_id)
    if (
        found is not None
        and guest_email is None
        and user_id is not None
        and found.user_id != user_id
    ):
        found = None
    if found is None and await room.required(event_id, settings.queue_saturation_seconds):
        raise AdmissionRequired() if token is None else AdmissionInvalid()
    return found


async def reserve(
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    valve: ReserveValve,
    *,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    idempotency_key: str | None,
    room: WaitingRoom | None = None,
    admission_token: str | None = None,
    lines: list[ReserveLine] | None = None,
    promo_code: str | None = None,
    guest_email: str | None = None,
    transfer: bank_transfer.Offer | None = None,
    seat_ids: list[str] | None = None,
) -> Reservation | Pending:
    """Hold seats: a Reservation (held), a named error (sold out, not on sale, ...), or Pending
    when the reserve was sent but its answer is late. Whatever happens after a gate seat was
    taken, a request that ends without a known hold gives it back (once per booking: the seat
    comes back exactly once whichever path notices) and marks the gate suspect.

    With a waiting ``room``: during a queued on-sale the reserve needs an admission token; an
    admission makes one booking (its place is the idempotency key unless one is given)."""
    entry: waitingroom.Admission | None = None
    started = time.monotonic()
    if room is not None:
        entry = await admitted(
            res.settings,
            room,
            valve,
            user_id=user_id,
            event_id=event_id,
            token=admission_token,
            guest_email=guest_email,
        )
        if entry is not None and idempotency_key is None:
            idempotency_key = entry.idempotency_key
    result = await _reserve(
        res,
        temporal,
        gate,
        valve,
        user_id,
        event_id,
        quantity,
        idempotency_key,
        lines=lines,
        promo_code=promo_code,
        transfer=transfer,
        seat_ids=seat_ids,
    )
    if entry is not None and room is not None:
        # the admission rate's signals: demand, and how fast the reserve path answers
        slow = time.monotonic() - started > waitingroom.SLOW_RESERVE_SECONDS
        await room.mark_used(event_id, entry.place, slow=slow)
    return result


async def _reserve(
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    valve: ReserveValve,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    idempotency_key: str | None,
    *,
    lines: list[ReserveLine] | None = None,
    promo_code: str | None = None,
    transfer: bank_transfer.Offer | None = None,
    seat_ids: list[str] | None = None,
) -> Reservation | Pending:
    booking_id = booking_id_for(user_id, idempotency_key)
    seated = await _seated(res, event_id, seat_ids)
    # The valve's slot is taken BEFORE any gate seat, so a seat is only ever taken by a
    # request that goes on to start its workflow. (Taking the seat first and giving it back
    # when shed let the gate read 0 while that seat was only borrowed: the flash-sale
    # benchmark counted 8-16 spurious sold_out answers per run; docs/performance.md.)
    # At the cap, a sold-out event answers 409 from a read-only look at the gate (before it
    # would wait, and again when woken while waiting); a sold-out request that got a slot gives
    # it back within one Redis round trip.

    shapes = shapes_of(seated, quantity, lines, seat_ids)

    async def still_on_sale() -> None:
        refused_at_gate(await gate.refused(event_id, quantity, shapes))

    # a request with an Idempotency-Key may be the retry of one that holds seats: it is never
    # answered sold out from a look at the gate, so it waits for its slot
    await valve.enter(event_id, still_on_sale if idempotency_key is None else None)
    try:
        idempotent = idempotency_key is not None
        # a request with lines, a promo code or reserved seats may be refused for them and
        # give its seats back: the gate is in doubt while they are out
        doubtful = bool(lines) or promo_code is not None or seated
        taken = await _take(
            res,
            gate,
            event_id,
            quantity,
            booking_id,
            idempotent,
            doubtful=doubtful,
            seated=seated,
            shapes=shapes,
            seat_ids=seat_ids,
        )
        if taken is not None and taken.verdict == Verdict.SOLD_OUT:
            valve.sold_out(event_id)  # its waiters look again
        refused_at_gate(taken)
        if idempotent and (taken is None or taken.verdict not in (Verdict.OK, Verdict.RETRY)):
            # its workflow may hold seats by the time a retry comes: the retry must ask it
            await gate.mark_started(event_id, booking_id)
        data = BookingInput(
            booking_id=booking_id,
            event_id=event_id,
            user_id=user_id,
            quantity=quantity,
            # a bank transfer (issue 29): the seats are held for the event's whole window
            hold_seconds=transfer.window_days * 86_400 if transfer else res.settings.hold_seconds,
            lines=lines or [],
            promo_code=promo_code,
            bank_transfer=transfer is not None,
            seated=seated,
            seat_ids=seat_ids or [],
        )
        # a seated reserve that took its gate seat is counted in flight until its answer is
        # noted; one by seat id first waits for those before it (SeatedInFlight)
        tracked = (
            valve.seated.track(event_id, bool(seat_ids))
            if taken is not None and taken.verdict == Verdict.OK and taken.epoch is not None
            else contextlib.nullcontext(list[asyncio.Future[None]]())
        )
        with tracked as earlier:
            if earlier:
                await _after_earlier(gate, data, shapes, earlier)
            # the OrganizationId search attribute: a per-process cache (one Postgres read per
            # event per process, not per reserve); it never fails (None: goes unlabelled)
            organization_id = await organization_of_event(res.engine, event_id)
            try:
                result = await _start(res, temporal, gate, data, taken, organization_id)
            except BaseException:  # Temporal unreachable, the request cancelled, a bug
                metrics.RESERVE_REQUESTS.labels(outcome="error").inc()
                raise
        if isinstance(result, Pending):
            metrics.RESERVE_REQUESTS.labels(outcome="pending").inc()
            return result
        if result.reason == ReserveOutcome.SOLD_OUT:
            valve.sold_out(event_id)
    finally:
        valve.leave()
    return _answer(result, event_id, quantity, idempotent)


async def _start(
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    data: BookingInput,
    taken: Taken | None,
    organization_id: uuid.UUID | None,
) -> Reservation | Pending:
    """Start the booking's workflow for a request that took its seat from the gate
    (``taken``), and settle that seat when the hold did not come of it: a late answer
    (Pending) or an error doubts the gate, a rejected reserve gives the seat back. A seated
    reserve's answer is noted for the requests that follow (:func:`_note_seats`)."""
    event_id, quantity, booking_id = data.event_id, data.quantity, data.booking_id
    verdict = None if taken is None else taken.verdict
    try:
        result = await booking_client.start_booking(
            temporal,
            data,
            wait_seconds=res.settings.reserve_timeout_seconds,
            organization_id=organization_id,
        )
    except booking_client.RunEnded:
        # a retry whose run ended without answering it (its reserve update lost in a Temporal
        # restart): the run's booking row says what it did, and this request made no hold
        recorded = await recorded_booking(res.engine, booking_id)
        if verdict == Verdict.OK:
            await _doubt(gate, event_id, quantity, booking_id)
        if recorded is None:
            return Pending(booking_id, event_id, retry_after=2)
        return recorded
    except booking_client.OutcomeUnknown:
        if verdict == Verdict.OK:
            await _doubt(gate, event_id, quantity, booking_id)
        return Pending(booking_id, event_id, retry_after=2)
    except BaseException:
        if verdict == Verdict.OK:
            await _doubt(gate, event_id, quantity, booking_id)
        raise
    if verdict == Verdict.OK and result.status == BookingStatus.REJECTED:
        # the reserve statement gave it back already (same once-key): this covers a
        # give-back that did not reach Redis
        await gate.give_back_no_hold(event_id, quantity, booking_id)
        if result.reason == ReserveOutcome.UNAVAILABLE:
            await gate.suspect(event_id)
    if taken is not None and taken.epoch is not None:
        await _note_seats(gate, data, taken.epoch, result)
    return result


async def _note_seats(gate: Gate, data: BookingInput, epoch: str, result: Reservation) -> None:
    """What a seated reserve learnt of the committed seats, for the API to refuse the requests
    that follow without a workflow (Gate.note_seats: kept only if no seat was freed since the
    take read ``epoch``): the seats it now holds, the asked seats found not free, or that its
    first best-available line has no block left."""
    if (
        result.status == BookingStatus.HELD
        and result.seats
        and result.booking_id == data.booking_id
    ):
        await gate.note_seats(data.event_id, epoch, taken=[s.id for s in result.seats])
    elif result.reason == ReserveOutcome.SEATS_TAKEN and result.refusal_committed:
        if data.seat_ids:
            await gate.note_seats(data.event_id, epoch, taken=result.seats_taken)
        else:
            lines = data.lines or None
            shape = shapes_of(True, data.quantity, lines, None)[0]
            await gate.note_seats(data.event_id, epoch, no_block=shape)


async def place_order(
    res: Resources,
    temporal: TemporalClient,
    gate: Gate,
    *,
    booking_id: uuid.UUID,
    user_id: uuid.UUID,
    event_id: uuid.UUID,
    quantity: int,
    lines: list[ReserveLine] | None,
    channel: str,
    note: str | None,
    organization_id: uuid.UUID | None,
) -> Reservation | Pending:
    """An organizer's order (issue 29: ``comp`` or ``box_office``) for the buyer ``user_id``:
    the buyer path's seat accounting — a seat from the sold-out gate (given back exactly as a
    buyer's), then the same one-statement reserve in the booking's workflow, which confirms it
    at once without a card charge (the reserve update answers ``confirmed``). Not for staff:
    the waiting room and the in-flight valve (a handful of staff, not a crowd). The gate's
    counter stays exact; a sold-out verdict from a gate that is not suspect is true (the gate
    never runs low), a suspect one is checked against Postgres. Sold out: ``SoldOut``."""
    seated = await _seated(res, event_id, None)
    # idempotent: the same order asked again (same booking id) takes its seats once
    taken = await _take(
        res,
        gate,
        event_id,
        quantity,
        booking_id,
        True,
        doubtful=bool(lines) or seated,
        seated=seated,  # its seats are noted; it is not refused from the notes
    )
    if taken is not None and taken.verdict == Verdict.SOLD_OUT:
        raise sold_out()
    data = BookingInput(
        booking_id=booking_id,
        event_id=event_id,
        user_id=user_id,
        quantity=quantity,
        hold_seconds=res.settings.hold_seconds,
        lines=lines or [],
        channel=channel,
        note=note,
        seated=seated,  # issue 34: best available seats
    )
    result = await _start(res, temporal, gate, data, taken, organization_id)
    if isinstance(result, Pending):
        return result
    return _answer(result, event_id, quantity, True)


async def _seated(res: Resources, event_id: uuid.UUID, seat_ids: list[str] | None) -> bool:
    """Is the event seated (issue 34; a per-process cache)? Seats by id only on a seated
    event (422 ``seats_invalid``): asked before any gate seat is taken."""
    seated = await seating.is_seated(res.engine, event_id)
    if seat_ids and not seated:
        raise SeatsInvalid()
    return seated


async def _doubt(gate: Gate, event_id: uuid.UUID, quantity: int, booking_id: uuid.UUID) -> None:
    """A seat taken by a request whose hold is not known: give it back (a hold that appears
    later only leaves the gate high, which is safe) and doubt the counter. Shielded: a request
    being cancelled still settles its seat."""

    async def settle() -> None:
        await gate.give_back_no_hold(event_id, quantity, booking_id)
        await gate.suspect(event_id)

    await asyncio.shield(settle())


def _answer(
    result: Reservation, event_id: uuid.UUID, quantity: int, idempotent: bool
) -> Reservation:
    if idempotent and (result.event_id != event_id or result.quantity != quantity):
        raise IdempotencyKeyReused()
    if result.status != BookingStatus.REJECTED:
        metrics.RESERVE_REQUESTS.labels(outcome="held").inc()
        return result
    if result.reason == ReserveOutcome.SOLD_OUT:
        raise sold_out()
    metrics.RESERVE_REQUESTS.labels(outcome="rejected").inc()
    if result.reason == ReserveOutcome.EVENT_NOT_FOUND:
        raise EventNotFound()
    if result.reason == ReserveOutcome.EVENT_NOT_ON_SALE:
        raise EventNotOnSale()
    if result.reason == ReserveOutcome.SEATS_TAKEN:  # issue 34: which ones, to suggest others
        raise SeatsTaken(seats=result.seats_taken)
    refusal = _REFUSALS.get(result.reason or "")
    if refusal is not None:
        raise refusal()
    raise ServiceUnavailable("Bookings are unavailable right now; retry shortly.")


#: a line or the promo code refused (issue 15): nothing was taken
_REFUSALS: dict[str, type[EventlyError]] = {
    ReserveOutcome.TICKET_TYPE_SOLD_OUT: TicketTypeSoldOut,
    ReserveOutcome.TICKET_TYPE_NOT_FOUND: TicketTypeNotFound,
    ReserveOutcome.SALES_CLOSED: SalesClosed,
    ReserveOutcome.TOO_MANY_OF_TYPE: TooManyOfType,
    ReserveOutcome.PROMO_CODE_UNKNOWN: PromoCodeUnknown,
    ReserveOutcome.PROMO_CODE_EXPIRED: PromoCodeExpired,
    ReserveOutcome.PROMO_CODE_USED_UP: PromoCodeUsedUp,
    ReserveOutcome.PROMO_CODE_NOT_APPLICABLE: PromoCodeNotApplicable,
}


def update_wait_seconds(settings: Settings) -> float:
    """How long a request waits for a booking workflow's answer: inside the request deadline,
    with room to answer (a late answer is a 503 with Retry-After; the update goes on)."""
    return max(settings.request_deadline_seconds - 2.0, 1.0)


async def pay(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    payment_method: str,
) -> PayResult:
    """Pay for a held booking: the result is CONFIRMED, or REQUIRES_ACTION / PROCESSING (the
    hold keeps running, a webhook settles it); every other outcome raises its error.

    An ended hold is asked too: while its workflow runs, a charge whose answer was lost may
    still confirm it (issue 31), and the workflow answers once that is settled. A workflow no
    longer running is answered from the row read again (it may have ended, confirmed or not,
    since ``booking`` was read)."""
    if booking.status == BookingStatus.CONFIRMED:
        return PayResult(status=PayOutcome.CONFIRMED, booking_status=BookingStatus.CONFIRMED)
    if booking.status not in (BookingStatus.HELD, BookingStatus.EXPIRED, BookingStatus.CANCELLED):
        raise BookingNotHeld()
    try:
        result = await booking_client.pay(
            temporal, booking.id, payment_method, wait_seconds=update_wait_seconds(settings)
        )
    except WorkflowNotRunning:
        now = await session.scalar(select(Booking.status).where(Booking.id == booking.id))
        await end_transaction(session)
        if now == BookingStatus.CONFIRMED:
            return PayResult(status=PayOutcome.CONFIRMED, booking_status=BookingStatus.CONFIRMED)
        if now in (BookingStatus.EXPIRED, BookingStatus.CANCELLED):
            raise HoldExpired() from None
        raise
    if result.status in (
        PayOutcome.CONFIRMED,
        PayOutcome.REQUIRES_ACTION,
        PayOutcome.PROCESSING,
    ):
        return result
    if result.status == PayOutcome.DECLINED:
        raise PaymentDeclined(
            f"The payment was declined ({result.detail}); the hold stays until it ends."
        )
    if result.status == PayOutcome.HOLD_EXPIRED:
        if result.booking_status == BookingStatus.CANCELLED:  # paid too late: given back
            raise HoldExpired(
                "The hold on this booking ended before the payment settled; "
                "the payment was refunded."
            )
        raise HoldExpired()
    if result.status == PayOutcome.UNAVAILABLE:
        raise PaymentUnavailable(retry_after=5)
    raise BookingNotHeld()


async def cancel(
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    actor: str,
    *,
    reason: str = "cancelled by buyer",
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """A held booking is released; a confirmed one is refunded, then released."""
    if booking.status not in (BookingStatus.HELD, BookingStatus.CONFIRMED):
        raise BookingNotActive(f"This booking is already {booking.status}.")
    result = await booking_client.cancel(
        temporal,
        booking.id,
        actor=actor,
        reason=reason,
        wait_seconds=update_wait_seconds(settings),
        organization_id=organization_id,
    )
    if result.booking_status not in (BookingStatus.CANCELLED, BookingStatus.EXPIRED):
        raise BookingNotActive(
            f"This booking is {result.booking_status}"
            + (f": {result.detail}." if result.detail else ".")
        )
    return result


async def check_buyer_refund(session: AsyncSession, booking: Booking) -> None:
    """A buyer cancelling a confirmed booking (a refund) must be within the event's refund
    policy (evently/refund_policy.py): else 409 ``refund_not_allowed`` with the policy. A held
    booking is no refund: always allowed."""
    if booking.status != BookingStatus.CONFIRMED:
        return
    event = await events.get_event(session, booking.event_id)
    if event is None:
        raise EventNotFound()
    policy = refund_policy.parse(event.refund_policy)
    if not refund_policy.buyer_may_refund(policy, event.starts_at, datetime.now(UTC)):
        deadline = refund_policy.buyer_deadline(policy, event.starts_at)
        raise RefundNotAllowed(
            f"{refund_policy.describe(policy)}"
            + (f" (that was {deadline.isoformat()})." if deadline is not None else "."),
            refund_policy=refund_policy.as_json(policy),
        )


def check_organizer_refund(event_policy: dict[str, Any] | None) -> None:
    """An organizer's refund is refused only when the event refunds nothing through Evently."""
    policy = refund_policy.parse(event_policy)
    if not refund_policy.organizer_may_refund(policy):
        raise RefundNotAllowed(
            f"{refund_policy.describe(policy)}: this event refunds nothing through Evently "
            "(cancelling the event still refunds everyone).",
            refund_policy=refund_policy.as_json(policy),
        )


async def refund_whole(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    actor: str,
    *,
    reason: str = "cancelled by buyer",
    organization_id: uuid.UUID | None = None,
) -> CancelResult:
    """:func:`cancel`, with the rule that nothing used is refunded: a confirmed booking's
    tickets are locked and promised to the refund in this transaction (409
    ``ticket_checked_in`` if one was scanned; evently/booking_changes.py), committed before the
    workflow runs; if the booking is not cancelled after all, they are usable again."""
    sealed = booking.status == BookingStatus.CONFIRMED
    if sealed:
        await booking_changes.seal_booking(session, booking.id)
    await end_transaction(session)  # hand the connection back before asking Temporal
    try:
        return await cancel(
            temporal, settings, booking, actor, reason=reason, organization_id=organization_id
        )
    except BookingNotActive:
        if sealed:
            await booking_changes.unseal_booking(session, booking.id)
            await end_transaction(session)
        raise


async def cancel_lines(
    session: AsyncSession,
    temporal: TemporalClient,
    settings: Settings,
    booking: Booking,
    wanted: dict[uuid.UUID, int],
    actor: str,
    *,
    reason: str = "lines cancelled by buyer",
    organization_id: uuid.UUID | None = None,
) -> tuple[int | None, CancelResult, Decimal | None]:
    """Cancel part of a confirmed booking: the change is numbered and recorded (committed),
    then run by its BookingChangeWorkflow. Lines that cover every seat left are a whole
    cancellation. The tickets refunded are unused ones, promised to the change in the
    transaction that records it (409 ``ticket_checked_in`` when too few are unused).
    Returns (change number or None, the result, the change's refund)."""
    change = await booking_changes.request(session, booking.id, wanted, actor=actor, reason=reason)
    if change is None:
        return (
            None,
            await refund_whole(
                session,
                temporal,
                settings,
                booking,
                actor,
                reason=reason,
                organization_id=organization_id,
            ),
            None,
        )
    change_no, amount = change.change_no, change.refund_amount
    await end_transaction(session)  # the workflow reads the change
    result = await booking_client.cancel_lines(
        temporal,
        booking.id,
        change_no,
        actor=actor,
        reason=reason,
        wait_seconds=update_wait_seconds(settings),
        organization_id=organization_id,
    )
    if result.booking_status != BookingStatus.CONFIRMED or not result.refunded:
        raise BookingNotActive(
            f"This booking is {result.booking_status}"
            + (f": {result.detail}." if result.detail else ".")
        )
    return change_no, result, amount


# ---- guest checkout (issue 32, docs/buyers.md) -------------------------------------------------


async def guest_buyer(res: Resources, email: str, name: str) -> uuid.UUID:
    """The account row a guest's booking belongs to (made, committed, before the reserve: the
    booking's workflow writes rows that refer to it)."""
    email = accounts.normalize_email(email)
    async with res.sessionmaker() as session, session.begin():
        user = await booking_keys.buyer_for_email(session, email, name)
        return user.id


async def guest_access(
    res: Resources, booking_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[str, str]:
    """The guest booking's access key and link (the same on a retried reserve)."""
    async with res.sessionmaker() as session, session.begin():
        key = await booking_keys.ensure(session, res.settings, booking_id, user_id)
    return key, booking_keys.access_url(res.settings, booking_id, key)


async def rotate_access(
    session: AsyncSession, settings: Settings, booking: Booking
) -> tuple[str, str]:
    if not await booking_keys.is_guest_booking(session, booking.id):
        raise NotAGuestBooking()
    key = await booking_keys.rotate(session, settings, booking.id, booking.user_id)
    return key, booking_keys.access_url(settings, booking.id, key)
