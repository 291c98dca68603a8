"""BookingWorkflow alone: stand-in activities (an in-memory ledger, no Postgres, no Redis) on the
time-skipping server, workers built by the production function with the strict sandbox. Fast:
the lifecycle rules — hold, pay, decline, cancel, expire, late payment — in milliseconds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from evently.enums import BookingStatus, LateSettlement, PayOutcome, ReserveOutcome
from evently.errors import WorkflowNotRunning
from evently.settings import Settings
from tests.support.temporal import workers_without_resources
from workflows.booking import client as booking_client
from workflows.booking.contract import (
    CHARGE,
    CONFIRM_BOOKING,
    LOAD_BOOKING,
    QUERY_STATE,
    RECORD_PROVIDER_PAYMENT,
    REFUND,
    RELEASE_BOOKING,
    RESERVE_SEATS,
    SETTLE_LATE_PAYMENT,
    BookingFacts,
    BookingInput,
    BookingState,
    ChargeInput,
    ChargeResult,
    PaymentNotice,
    ProviderPaymentInput,
    RefundInput,
    RefundResult,
    ReleaseInput,
    Reservation,
    booking_workflow_id,
)
from workflows.waitlist.contract import WAITLIST_SEATS_FREED, SeatsFreed

pytestmark = pytest.mark.unit

HOLD = 300


@dataclass
class Ledger:
    """What the stand-ins were asked to do (the real activities' effects, in memory)."""

    seats: int = 3
    price: Decimal = Decimal("10.00")
    taken: dict[uuid.UUID, int] = field(default_factory=dict)
    status: dict[uuid.UUID, BookingStatus] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    waiting: bool = False  # someone on the waitlist: releases keep the seats for them
    refunds: list[RefundInput] = field(default_factory=list)
    # a charge with "pm_card_visa_slow" waits for this (a provider call still running)
    charge_answers: asyncio.Event = field(default_factory=asyncio.Event)

    def stand_ins(self) -> dict[str, object]:
        ledger = self

        @activity.defn(name=RESERVE_SEATS)
        async def reserve(data: BookingInput) -> Reservation:
            ledger.calls.append(RESERVE_SEATS)
            if data.booking_id in ledger.status:  # a new run finds its booking: takes nothing
                return Reservation(
                    booking_id=data.booking_id,
                    event_id=data.event_id,
                    quantity=data.quantity,
                    status=ledger.status[data.booking_id],
                    amount=ledger.price * data.quantity,
                    currency="EUR",
                )
            if data.quantity > ledger.seats:
                return Reservation(
                    booking_id=data.booking_id,
                    event_id=data.event_id,
                    quantity=data.quantity,
                    status=BookingStatus.REJECTED,
                    reason=ReserveOutcome.SOLD_OUT,
                )
            ledger.seats -= data.quantity
            ledger.taken[data.booking_id] = data.quantity
            ledger.status[data.booking_id] = BookingStatus.HELD
            return Reservation(
                booking_id=data.booking_id,
                event_id=data.event_id,
                quantity=data.quantity,
                status=BookingStatus.HELD,
                amount=ledger.price * data.quantity,
                currency="EUR",
                # the server's clock, as Postgres' now() is in production
                hold_expires_at=now() + timedelta(seconds=data.hold_seconds),
                event_ends_at=now() + timedelta(days=30),
            )

        @activity.defn(name=CONFIRM_BOOKING)
        async def confirm(booking_id: uuid.UUID) -> bool:
            ledger.calls.append(CONFIRM_BOOKING)
            ledger.status[booking_id] = BookingStatus.CONFIRMED
            return True

        @activity.defn(name=RELEASE_BOOKING)
        async def release(data: ReleaseInput) -> bool:
            ledger.calls.append(f"{RELEASE_BOOKING}:{data.to_status}")
            ledger.status[data.booking_id] = data.to_status
            if ledger.waiting:
                return False
            ledger.seats += ledger.taken.pop(data.booking_id, 0)
            return True

        @activity.defn(name=LOAD_BOOKING)
        async def load(booking_id: uuid.UUID) -> BookingFacts:
            ledger.calls.append(LOAD_BOOKING)
            quantity = ledger.taken.get(booking_id, 1)
            return BookingFacts(
                booking_id=booking_id,
                event_id=uuid.uuid4(),
                user_id=uuid.uuid4(),
                quantity=quantity,
                status=ledger.status[booking_id],
                amount=ledger.price * quantity,
                currency="EUR",
                event_ends_at=now() + timedelta(days=30),
            )

        @activity.defn(name=SETTLE_LATE_PAYMENT)
        async def settle(booking_id: uuid.UUID) -> LateSettlement:
            ledger.calls.append(SETTLE_LATE_PAYMENT)
            if not ledger.seats:
                return LateSettlement.REFUND
            ledger.seats -= 1
            ledger.status[booking_id] = BookingStatus.CONFIRMED
            return LateSettlement.CONFIRMED

        @activity.defn(name=CHARGE)
        async def charge(data: ChargeInput) -> ChargeResult:
            ledger.calls.append(f"{CHARGE}:{data.payment_method}")
            if data.payment_method == "pm_card_visa_slow":
                await ledger.charge_answers.wait()
                return ChargeResult(succeeded=True, provider_payment_id=f"ch_{data.attempt}")
            if data.payment_method == "pm_card_authenticationRequired":  # 3-D Secure
                return ChargeResult(
                    succeeded=False,
                    provider_payment_id=f"pi_{data.attempt}",
                    pending=PayOutcome.REQUIRES_ACTION,
                    client_secret=f"pi_{data.attempt}_secret_1",
                )
            ok = data.payment_method == "pm_card_visa"
            return ChargeResult(
                succeeded=ok,
                provider_payment_id=f"ch_{data.attempt}",
                failure_code=None if ok else "card_declined",
            )

        @activity.defn(name=REFUND)
        async def refund(data: RefundInput) -> RefundResult:
            ledger.calls.append(REFUND)
            ledger.refunds.append(data)
            return RefundResult(refunded=True, provider_payment_id="re_1", amount=ledger.price)

        @activity.defn(name=RECORD_PROVIDER_PAYMENT)
        async def record(data: ProviderPaymentInput) -> bool:
            ledger.calls.append(RECORD_PROVIDER_PAYMENT)
            return True

        @activity.defn(name=WAITLIST_SEATS_FREED)
        async def freed(data: SeatsFreed) -> bool:
            ledger.calls.append(WAITLIST_SEATS_FREED)
            return True

        return {
            RESERVE_SEATS: reserve,
            LOAD_BOOKING: load,
            CONFIRM_BOOKING: confirm,
            RELEASE_BOOKING: release,
            SETTLE_LATE_PAYMENT: settle,
            CHARGE: charge,
            REFUND: refund,
            RECORD_PROVIDER_PAYMENT: record,
            WAITLIST_SEATS_FREED: freed,
        }


def now() -> datetime:
    return activity.info().current_attempt_scheduled_time


@pytest.fixture
async def ledger(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Ledger]:
    ledger = Ledger()
    async with workers_without_resources(
        time_skipping_env.client, Settings(env="test"), ledger.stand_ins()
    ):
        yield ledger


async def _hold(client: Client, qty: int = 1) -> tuple[BookingInput, Reservation]:
    data = BookingInput(
        booking_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        quantity=qty,
        hold_seconds=HOLD,
    )
    return data, await booking_client.start_booking(client, data, wait_seconds=10)


async def _final(env: WorkflowEnvironment, booking_id: uuid.UUID) -> BookingState:
    """Skip time until the booking's run completes (a confirmed one waits for its event)."""
    handle = env.client.get_workflow_handle(
        booking_workflow_id(booking_id), result_type=BookingState
    )
    for _ in range(60):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            break
        await env.sleep(timedelta(days=1))
    # its state by query (the test server cannot always hand out the result of a second run
    # started by signal-with-start: "No completion event found")
    state: BookingState = await handle.query(QUERY_STATE, result_type=BookingState)
    return state


async def test_a_hold_that_is_never_paid_expires_and_releases_once(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    data, held = await _hold(time_skipping_env.client, 2)
    assert held.status == BookingStatus.HELD
    assert ledger.seats == 1
    state = await _final(time_skipping_env, data.booking_id)
    assert state.status == BookingStatus.EXPIRED
    assert ledger.calls == [RESERVE_SEATS, f"{RELEASE_BOOKING}:expired"]
    assert ledger.seats == 3


async def test_a_declined_card_keeps_the_hold_and_a_good_one_confirms(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    declined = await booking_client.pay(client, data.booking_id, "pm_card_chargeDeclined")
    assert (declined.status, declined.booking_status) == (PayOutcome.DECLINED, "held")
    paid = await booking_client.pay(client, data.booking_id, "pm_card_visa")
    assert (paid.status, paid.booking_status) == (PayOutcome.CONFIRMED, "confirmed")
    assert ledger.calls == [
        RESERVE_SEATS,
        f"{CHARGE}:pm_card_chargeDeclined",
        f"{CHARGE}:pm_card_visa",
        CONFIRM_BOOKING,
    ]


async def test_paying_after_the_window_is_refused_and_charges_nobody(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    assert (await _final(time_skipping_env, data.booking_id)).status == BookingStatus.EXPIRED
    # the run has ended: the client says so (the API answers 409 hold_expired from the row)
    with pytest.raises(WorkflowNotRunning):
        await booking_client.pay(client, data.booking_id, "pm_card_visa")
    assert not any(c.startswith(CHARGE) for c in ledger.calls)


async def test_cancelling_a_confirmed_booking_refunds_then_releases(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    await booking_client.pay(client, data.booking_id, "pm_card_visa")
    done = await booking_client.cancel(client, data.booking_id, actor="user:x", reason="ill")
    assert (done.booking_status, done.refunded) == (BookingStatus.CANCELLED, True)
    # asked again: a new change finds the booking cancelled and changes nothing
    again = await booking_client.cancel(client, data.booking_id, actor="user:x", reason="ill")
    assert (again.booking_status, again.detail) == ("cancelled", "the booking is cancelled")
    assert ledger.calls[-4:] == [
        LOAD_BOOKING,
        REFUND,
        f"{RELEASE_BOOKING}:cancelled",
        LOAD_BOOKING,  # the second time: nothing left to do
    ]
    assert ledger.calls.count(REFUND) == 1


async def test_sold_out_ends_the_workflow_without_taking_anything(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    data, rejected = await _hold(time_skipping_env.client, 5)
    assert (rejected.status, rejected.reason) == (BookingStatus.REJECTED, "sold_out")
    state = await _final(time_skipping_env, data.booking_id)
    assert state.status == BookingStatus.REJECTED
    assert ledger.calls == [RESERVE_SEATS]


async def test_a_release_that_keeps_seats_for_the_waitlist_hands_them_over(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    ledger.waiting = True
    data, _ = await _hold(time_skipping_env.client)
    await booking_client.cancel(
        time_skipping_env.client, data.booking_id, actor="user:y", reason="changed plans"
    )
    assert ledger.calls == [RESERVE_SEATS, f"{RELEASE_BOOKING}:cancelled", WAITLIST_SEATS_FREED]


async def test_a_payment_after_expiry_is_accepted_when_seats_are_free(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    assert (await _final(time_skipping_env, data.booking_id)).status == BookingStatus.EXPIRED
    notice = PaymentNotice(
        provider_event_id="evt_1",
        provider_payment_id="pi_1",
        amount=Decimal("10.00"),
        currency="EUR",
    )
    await booking_client.deliver_payment(client, data, notice)
    await booking_client.deliver_payment(client, data, notice)  # the provider retries
    state = await _final(time_skipping_env, data.booking_id)
    assert state.status == BookingStatus.CONFIRMED
    assert ledger.calls.count(SETTLE_LATE_PAYMENT) == 1  # the second delivery: seen before
    assert ledger.calls.count(RECORD_PROVIDER_PAYMENT) == 1


async def test_three_d_secure_keeps_the_hold_and_the_webhook_confirms(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    pending = await booking_client.pay(client, data.booking_id, "pm_card_authenticationRequired")
    assert (pending.status, pending.booking_status) == (PayOutcome.REQUIRES_ACTION, "held")
    assert pending.client_secret == "pi_1_secret_1"
    handle = client.get_workflow_handle(booking_workflow_id(data.booking_id))
    state = await handle.query(QUERY_STATE, result_type=BookingState)
    assert state.status == BookingStatus.HELD  # the hold keeps running
    # the buyer completes 3-D Secure: the provider's webhook reports the payment
    notice = PaymentNotice(
        provider_event_id="evt_3ds", provider_payment_id="pi_1", amount=Decimal(10), currency="EUR"
    )
    await booking_client.deliver_payment(client, data, notice)
    for _ in range(100):
        state = await handle.query(QUERY_STATE, result_type=BookingState)
        if state.status == BookingStatus.CONFIRMED:
            break
        await asyncio.sleep(0.05)
    assert state.status == BookingStatus.CONFIRMED
    # confirmed, the run has ended: a pay the buyer's client sends afterwards charges nothing
    # (the API answers 200 confirmed from the booking row before asking the workflow)
    with pytest.raises(WorkflowNotRunning):
        await booking_client.pay(client, data.booking_id, "pm_card_visa")
    assert ledger.calls == [
        RESERVE_SEATS,
        f"{CHARGE}:pm_card_authenticationRequired",
        RECORD_PROVIDER_PAYMENT,
        CONFIRM_BOOKING,
    ]


async def test_three_d_secure_never_finished_lets_the_hold_expire(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    pending = await booking_client.pay(client, data.booking_id, "pm_card_authenticationRequired")
    assert pending.status == PayOutcome.REQUIRES_ACTION
    assert (await _final(time_skipping_env, data.booking_id)).status == BookingStatus.EXPIRED
    assert ledger.calls[-1] == f"{RELEASE_BOOKING}:expired"
    assert CONFIRM_BOOKING not in ledger.calls


async def test_a_payment_after_expiry_is_refunded_when_the_seats_are_gone(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    client = time_skipping_env.client
    data, _ = await _hold(client)
    assert (await _final(time_skipping_env, data.booking_id)).status == BookingStatus.EXPIRED
    ledger.seats = 0  # sold to somebody else meanwhile
    notice = PaymentNotice(
        provider_event_id="evt_late",
        provider_payment_id="pi_late",
        amount=Decimal("10.00"),
        currency="EUR",
    )
    await booking_client.deliver_payment(client, data, notice)
    state = await _final(time_skipping_env, data.booking_id)
    assert state.status == BookingStatus.CANCELLED
    assert ledger.calls[-3:] == [RECORD_PROVIDER_PAYMENT, SETTLE_LATE_PAYMENT, REFUND]
    # this booking's payment, and the expired booking ends cancelled
    assert [(r.booking_id, r.cancel_expired_booking) for r in ledger.refunds] == [
        (data.booking_id, True)
    ]


async def test_a_cancel_while_the_charge_runs_refunds_the_confirmed_booking_in_place(
    time_skipping_env: WorkflowEnvironment, ledger: Ledger
) -> None:
    """The buyer cancels while their payment is still with the provider: the payment
    succeeds, the booking is confirmed, then refunded and released by the same run (its own
    cancel request, not a later change)."""
    client = time_skipping_env.client
    data, _ = await _hold(client)
    handle = client.get_workflow_handle(booking_workflow_id(data.booking_id))
    paying = asyncio.create_task(
        booking_client.pay(client, data.booking_id, "pm_card_visa_slow", wait_seconds=20)
    )
    async with asyncio.timeout(20):
        while f"{CHARGE}:pm_card_visa_slow" not in ledger.calls:
            await asyncio.sleep(0.05)
        cancelling = asyncio.create_task(
            booking_client.cancel(
                client, data.booking_id, actor="user:z", reason="plans", wait_seconds=20
            )
        )
        while not any(
            "cancel requested by user:z" in line
            for line in (await handle.query(QUERY_STATE, result_type=BookingState)).history
        ):
            await asyncio.sleep(0.05)
    ledger.charge_answers.set()
    paid, done = await paying, await cancelling
    assert (paid.status, paid.booking_status) == (PayOutcome.CONFIRMED, "confirmed")
    assert (done.booking_status, done.refunded) == (BookingStatus.CANCELLED, True)
    assert ledger.calls == [
        RESERVE_SEATS,
        f"{CHARGE}:pm_card_visa_slow",
        CONFIRM_BOOKING,
        REFUND,
        f"{RELEASE_BOOKING}:cancelled",
    ]
    assert [(r.booking_id, r.cancel_expired_booking) for r in ledger.refunds] == [
        (data.booking_id, False)
    ]
    assert ledger.seats == 3
