"""A provider that refuses a refund (issue 35): the simulated provider's ``pm_card_refundFail``
(Stripe's test card of that name) is charged, and every refund of that charge is refused. The
refund activity then records nothing and fails retryably (``RefundFailed``: Temporal retries
it), so the money is never marked returned and the booking stays confirmed and consistent."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError

from activities.payments import PaymentActivities
from evently.infra.resources import Resources
from evently.invariants import check
from evently.payments.provider import PaymentStatus, SimulatedProvider
from tests.factories import make_account, make_event
from workflows.booking.contract import RefundInput


async def test_the_simulated_refund_fail_card_charges_and_refuses_refunds() -> None:
    sim = SimulatedProvider()
    prepared = await sim.prepare_charge(
        idempotency_key="k1",
        amount=Decimal("10"),
        currency="EUR",
        payment_method="pm_card_refundFail",
    )
    paid = await sim.confirm_charge(
        prepared.provider_payment_id,
        idempotency_key="k1",
        payment_method="pm_card_refundFail",
        fresh=True,
    )
    assert paid.state is PaymentStatus.SUCCEEDED
    refused = await sim.refund(
        idempotency_key="r1",
        charge_id=paid.provider_payment_id,
        amount=Decimal("10"),
        currency="EUR",
    )
    assert (refused.state, refused.failure_code) == (PaymentStatus.FAILED, "refund_failed")
    # any other card's charge is refunded
    visa = await sim.prepare_charge(
        idempotency_key="k2", amount=Decimal("10"), currency="EUR", payment_method="pm_card_visa"
    )
    ok = await sim.refund(
        idempotency_key="r2",
        charge_id=visa.provider_payment_id,
        amount=Decimal("10"),
        currency="EUR",
    )
    assert ok.state is PaymentStatus.SUCCEEDED


async def test_a_refused_refund_is_retried_and_never_recorded(resources: Resources) -> None:
    buyer = await make_account(resources)
    event = await make_event(resources, capacity=5)
    booking = uuid.uuid4()
    sim = SimulatedProvider()
    charge = await sim.prepare_charge(
        idempotency_key=f"{booking}-charge",
        amount=Decimal("25.00"),
        currency="EUR",
        payment_method="pm_card_refundFail",
    )
    params = {
        "b": booking,
        "e": event.id,
        "u": buyer.id,
        "w": f"booking-{booking}",
        "p": charge.provider_payment_id,
    }
    async with resources.engine.begin() as conn:
        for sql in (
            "INSERT INTO bookings (id, event_id, user_id, quantity, amount, currency, status, "
            "workflow_id) VALUES (:b, :e, :u, 1, 25.00, 'EUR', 'confirmed', :w)",
            "INSERT INTO booking_lines (booking_id, ticket_type_id, quantity, unit_price) "
            "SELECT :b, id, 1, 25.00 FROM ticket_types WHERE event_id = :e AND is_default",
            "UPDATE ticket_types SET sold = 1 WHERE event_id = :e AND is_default",
            "UPDATE events SET available = 4, sold = 1 WHERE id = :e",
            "INSERT INTO tickets (id, booking_id, event_id, seat, issued_at) "
            "VALUES (gen_random_uuid(), :b, :e, 1, now())",
            "INSERT INTO payments (id, booking_id, kind, status, provider, provider_payment_id, "
            "idempotency_key, amount, currency) VALUES (gen_random_uuid(), :b, 'charge', "
            "'succeeded', 'simulated', :p, :p, 25.00, 'EUR')",
        ):
            await conn.execute(text(sql), {k: v for k, v in params.items() if f":{k}" in sql})

    acts = PaymentActivities(resources, provider=sim)
    for _ in range(2):  # a retry is refused again, the same way
        with pytest.raises(ApplicationError) as refused:
            await acts.refund_payment(RefundInput(booking_id=booking))
        assert refused.value.type == "RefundFailed"
        assert not refused.value.non_retryable  # Temporal keeps retrying it
    async with resources.engine.connect() as conn:
        kinds = list(
            await conn.scalars(
                text("SELECT kind FROM payments WHERE booking_id = :b"), {"b": booking}
            )
        )
        status = await conn.scalar(
            text("SELECT status FROM bookings WHERE id = :b"), {"b": booking}
        )
        assert await check(conn, event.id) == []
    assert kinds == ["charge"]  # no refund recorded: the money is not marked returned
    assert status == "confirmed"
