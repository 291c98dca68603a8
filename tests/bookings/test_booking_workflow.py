"""BookingWorkflow on the time-skipping test server with the real activities against the real
Postgres and Redis: a 5-minute hold expires in milliseconds."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.booking import InventoryActivities, PaymentActivities
from activities.booking_models import (
    CHARGE,
    CONFIRM_BOOKING,
    REFUND,
    RELEASE_BOOKING,
    RESERVE_SEATS,
    ChargeInput,
    ChargeResult,
    RefundInput,
    RefundResult,
    ReleaseInput,
    ReserveOutcome,
)
from activities.search import SearchIndexActivities
from evently import bookings, task_queues, webhooks
from evently.invariants import check
from evently.inventory import Gate
from evently.resources import Resources
from tests.factories import make_account, make_event
from workflows.booking import BookingWorkflow
from workflows.booking_models import (
    BookingInput,
    BookingState,
    booking_workflow_id,
)
from workflows.search_sync import EventIndexSyncWorkflow

HOLD = 300


@pytest.fixture
async def ts(
    time_skipping_env: WorkflowEnvironment, resources: Resources
) -> AsyncIterator[Resources]:
    """Resources whose Temporal client talks to the time-skipping server, plus its workers."""
    res = dataclasses.replace(
        resources,
        temporal=time_skipping_env.client,
        settings=resources.settings.model_copy(update={"hold_seconds": HOLD}),
    )
    async with _workers(res):
        yield res


def _workers(res: Resources, inv: InventoryActivities | None = None, pay: Any = None) -> Any:
    import contextlib

    inv = inv or InventoryActivities(res)
    pay = pay or PaymentActivities(res)

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[None]:
        booking = Worker(
            res.temporal,
            task_queue=task_queues.BOOKING,
            workflows=[BookingWorkflow, EventIndexSyncWorkflow],
            activities=[
                inv.reserve_seats,
                inv.confirm_booking,
                inv.release_booking,
                inv.settle_late_payment,
            ],
        )
        payments = Worker(
            res.temporal,
            task_queue=task_queues.PAYMENTS,
            activities=[
                pay.charge_payment,
                pay.refund_payment,
                pay.record_provider_payment,
                pay.notify_user,
            ],
        )
        search = Worker(
            res.temporal,
            task_queue=task_queues.SEARCH,
            activities=[SearchIndexActivities.from_resources(res).index_event],
        )
        async with booking, payments, search:
            yield

    return run()


async def _reserve(res: Resources, event_id: uuid.UUID, user_id: uuid.UUID, qty: int = 1) -> Any:
    return await bookings.reserve(
        res,
        Gate(res.redis),
        bookings.Admission(1000),
        user_id=user_id,
        event_id=event_id,
        quantity=qty,
        idempotency_key=None,
    )


async def _row(res: Resources, sql: str, **params: Any) -> Any:
    async with res.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).one()


async def _booking(res: Resources, booking_id: uuid.UUID) -> Any:
    return await _row(res, "SELECT * FROM bookings WHERE id = :id", id=booking_id)


async def _counters(res: Resources, event_id: uuid.UUID) -> tuple[int, int, int]:
    r = await _row(res, "SELECT available, held, sold FROM events WHERE id = :id", id=event_id)
    return (r.available, r.held, r.sold)


async def _payments(res: Resources, booking_id: uuid.UUID) -> list[tuple[str, str]]:
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind, status FROM payments WHERE booking_id = :b ORDER BY created_at"),
            {"b": booking_id},
        )
        return [(r.kind, r.status) for r in rows]


async def _invariants_hold(res: Resources, event_id: uuid.UUID) -> None:
    async with res.engine.connect() as conn:
        assert await check(conn, event_id) == []


async def _result(
    res: Resources, booking_id: uuid.UUID, env: WorkflowEnvironment, *, skip: float = 60
) -> BookingState:
    """Advance workflow time until the booking's (latest) run completes, then its result.

    (On the time-skipping server, result() right after update-with-start returns at once
    without a completion event, so we skip time ourselves and poll.)"""
    handle = res.temporal.get_workflow_handle(
        booking_workflow_id(booking_id), result_type=BookingState
    )
    deadline = time.monotonic() + 30
    while (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
        assert time.monotonic() < deadline, "the booking workflow did not finish"
        await env.sleep(timedelta(seconds=skip))
    state: BookingState = await handle.result()
    return state


async def test_hold_expires_after_five_minutes_and_returns_the_seats(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=5)
    held = await _reserve(ts, event.id, buyer.id, 2)
    assert held.status == "held"
    assert await _counters(ts, event.id) == (3, 2, 0)
    state = await _result(ts, held.booking_id, time_skipping_env)  # 300 s in milliseconds
    assert state.status == "expired"
    row = await _booking(ts, held.booking_id)
    assert row.status == "expired"
    assert row.ended_by == "hold-timer"
    assert await _counters(ts, event.id) == (5, 0, 0)
    await _invariants_hold(ts, event.id)


async def test_payment_just_before_the_deadline_confirms(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=5, price=Decimal("12.50"))
    held = await _reserve(ts, event.id, buyer.id, 2)
    await time_skipping_env.sleep(timedelta(seconds=HOLD - 2))
    paid = await bookings.pay(ts.temporal, held.booking_id, "pm_card_visa")
    assert paid.status == "confirmed"
    assert (await _booking(ts, held.booking_id)).status == "confirmed"
    assert await _counters(ts, event.id) == (3, 0, 2)
    assert await _payments(ts, held.booking_id) == [("charge", "succeeded")]
    await _invariants_hold(ts, event.id)


async def test_payment_just_after_the_deadline_is_refused(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=5)
    held = await _reserve(ts, event.id, buyer.id)
    await time_skipping_env.sleep(timedelta(seconds=HOLD + 2))
    state = await _result(ts, held.booking_id, time_skipping_env)
    assert state.status == "expired"
    # the API answers a payment now with 409 hold_expired (tests/bookings/test_booking_api.py)
    assert (await _booking(ts, held.booking_id)).status == "expired"
    assert await _payments(ts, held.booking_id) == []  # nobody was charged
    assert await _counters(ts, event.id) == (5, 0, 0)


async def test_declined_then_successful_payment(ts: Resources) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=3)
    held = await _reserve(ts, event.id, buyer.id)
    declined = await bookings.pay(ts.temporal, held.booking_id, "pm_card_chargeDeclined")
    assert declined.status == "declined"
    assert declined.booking_status == "held"  # the hold stays
    assert await _counters(ts, event.id) == (2, 1, 0)
    paid = await bookings.pay(ts.temporal, held.booking_id, "pm_card_visa")
    assert paid.status == "confirmed"
    assert await _payments(ts, held.booking_id) == [
        ("charge", "failed"),
        ("charge", "succeeded"),
    ]
    await _invariants_hold(ts, event.id)


async def test_buyer_cancels_held_and_confirmed_bookings(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=4)
    held = await _reserve(ts, event.id, buyer.id, 2)
    cancelled = await bookings.cancel(
        ts.temporal, held.booking_id, f"user:{buyer.id}", "changed plans"
    )
    assert cancelled.booking_status == "cancelled"
    assert not cancelled.refunded
    assert await _counters(ts, event.id) == (4, 0, 0)

    second = await _reserve(ts, event.id, buyer.id, 3)
    await bookings.pay(ts.temporal, second.booking_id, "pm_card_visa")
    assert await _counters(ts, event.id) == (1, 0, 3)
    done = await bookings.cancel(ts.temporal, second.booking_id, f"user:{buyer.id}", "ill")
    assert done.booking_status == "cancelled"
    assert done.refunded
    assert await _payments(ts, second.booking_id) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]
    row = await _booking(ts, second.booking_id)
    assert row.ended_by == f"user:{buyer.id}"
    assert await _counters(ts, event.id) == (4, 0, 0)
    state = await _result(ts, second.booking_id, time_skipping_env)
    assert state.status == "cancelled"
    await _invariants_hold(ts, event.id)


async def _late_webhook(res: Resources, booking_id: uuid.UUID, amount: Decimal) -> None:
    event = webhooks.WebhookEvent.model_validate(
        {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "payment.succeeded",
            "data": {
                "booking_id": str(booking_id),
                "amount": str(amount),
                "currency": "EUR",
                "payment_id": f"pi_{uuid.uuid4().hex[:16]}",
            },
        }
    )
    assert await webhooks.handle(res, event) == "processed"


async def test_late_payment_confirms_when_seats_are_still_free(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer = await make_account(ts)
    event = await make_event(ts, capacity=3, price=Decimal("10.00"))
    held = await _reserve(ts, event.id, buyer.id, 2)
    assert (await _result(ts, held.booking_id, time_skipping_env)).status == "expired"
    await _late_webhook(ts, held.booking_id, Decimal("20.00"))
    # the new run of the same booking id; confirmed, it stays open until the event is over
    state = await _result(ts, held.booking_id, time_skipping_env, skip=40 * 86400)
    assert state.status == "confirmed"
    assert (await _booking(ts, held.booking_id)).status == "confirmed"
    assert await _counters(ts, event.id) == (1, 0, 2)
    await _invariants_hold(ts, event.id)


async def test_late_payment_is_refunded_when_the_seats_are_gone(
    ts: Resources, time_skipping_env: WorkflowEnvironment
) -> None:
    buyer, rival = await make_account(ts), await make_account(ts)
    event = await make_event(ts, capacity=2, price=Decimal("10.00"))
    held = await _reserve(ts, event.id, buyer.id, 2)
    assert (await _result(ts, held.booking_id, time_skipping_env)).status == "expired"
    # the seats go to someone else (a long hold, so they stay taken while time skips)
    long_hold = dataclasses.replace(
        ts, settings=ts.settings.model_copy(update={"hold_seconds": 30 * 86400})
    )
    assert (await _reserve(long_hold, event.id, rival.id, 2)).status == "held"
    await _late_webhook(ts, held.booking_id, Decimal("20.00"))
    # (the test server cannot hand out the result of a second run started by
    # signal-with-start reliably, so read the outcome from the booking row)
    deadline = time.monotonic() + 30
    while (await _booking(ts, held.booking_id)).status != "cancelled":
        assert time.monotonic() < deadline, "the late payment was not refunded"
        await time_skipping_env.sleep(timedelta(seconds=1))
    assert await _payments(ts, held.booking_id) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]
    assert await _counters(ts, event.id) == (0, 2, 0)  # never oversold
    await _invariants_hold(ts, event.id)


class _Flaky:
    """Stand-ins registered under the real activity names: run the real activity, then fail
    the first attempt anyway (as if the worker died after the commit). The retry must find
    the work done and not do it twice."""

    def __init__(self, inv: InventoryActivities, pay: PaymentActivities) -> None:
        self.inv, self.pay = inv, pay
        self.calls: dict[str, int] = {}

    async def _twice(self, name: str, result: Any) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        if activity.info().attempt == 1:
            raise RuntimeError("worker crashed after the commit")
        return result

    @activity.defn(name=RESERVE_SEATS)
    async def reserve(self, data: BookingInput) -> ReserveOutcome:
        return await self._twice(RESERVE_SEATS, await self.inv.reserve_seats(data))

    @activity.defn(name=CONFIRM_BOOKING)
    async def confirm(self, booking_id: uuid.UUID) -> bool:
        return await self._twice(CONFIRM_BOOKING, await self.inv.confirm_booking(booking_id))

    @activity.defn(name=RELEASE_BOOKING)
    async def release(self, data: ReleaseInput) -> bool:
        return await self._twice(RELEASE_BOOKING, await self.inv.release_booking(data))

    @activity.defn(name=CHARGE)
    async def charge(self, data: ChargeInput) -> ChargeResult:
        return await self._twice(CHARGE, await self.pay.charge_payment(data))

    @activity.defn(name=REFUND)
    async def refund(self, data: RefundInput) -> RefundResult:
        return await self._twice(REFUND, await self.pay.refund_payment(data))


async def test_retried_activities_never_double_reserve_charge_refund_or_release(
    time_skipping_env: WorkflowEnvironment, resources: Resources
) -> None:
    res = dataclasses.replace(resources, temporal=time_skipping_env.client)
    inv, pay = InventoryActivities(res), PaymentActivities(res)
    flaky = _Flaky(inv, pay)
    booking = Worker(
        res.temporal,
        task_queue=task_queues.BOOKING,
        workflows=[BookingWorkflow, EventIndexSyncWorkflow],
        activities=[flaky.reserve, flaky.confirm, flaky.release, inv.settle_late_payment],
    )
    payments = Worker(
        res.temporal,
        task_queue=task_queues.PAYMENTS,
        activities=[flaky.charge, flaky.refund, pay.record_provider_payment, pay.notify_user],
    )
    search = Worker(
        res.temporal,
        task_queue=task_queues.SEARCH,
        activities=[SearchIndexActivities.from_resources(res).index_event],
    )
    buyer = await make_account(res)
    event = await make_event(res, capacity=5)
    async with booking, payments, search:
        held = await _reserve(res, event.id, buyer.id, 2)
        assert held.status == "held"
        assert await _counters(res, event.id) == (3, 2, 0)  # taken once despite the retry
        await bookings.pay(res.temporal, held.booking_id, "pm_card_visa")
        assert await _counters(res, event.id) == (3, 0, 2)
        await bookings.cancel(res.temporal, held.booking_id, "user:x", "retry test")
        assert await _counters(res, event.id) == (5, 0, 0)  # released once
        assert await _payments(res, held.booking_id) == [
            ("charge", "succeeded"),
            ("refund", "succeeded"),
        ]  # charged once, refunded once
    # every stand-in really ran twice: the first attempt's work was done, then "crashed"
    assert flaky.calls == {
        RESERVE_SEATS: 2,
        CONFIRM_BOOKING: 2,
        RELEASE_BOOKING: 2,
        CHARGE: 2,
        REFUND: 2,
    }
    await _invariants_hold(res, event.id)
