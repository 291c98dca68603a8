"""A verified provider event, acted on once: a successful payment goes to the booking's
workflow (which applies the late-payment rule when the hold is over). The generic webhook's
events name their booking; Stripe's are traced to it through our charge attempts."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from evently.db.models import Booking
from evently.enums import BookingStatus, PaymentAttemptStatus
from evently.errors import AmountMismatch, BookingNotFound
from evently.infra.resources import Resources
from evently.organizations import organization_of_event
from evently.payments import records, webhooks
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, PaymentNotice
from workflows.connection import TemporalClient

if TYPE_CHECKING:
    from evently.payments.stripe import StripeNotice

log = logging.getLogger("evently.payments")


def _booking_input(res: Resources, booking: Booking) -> BookingInput:
    return BookingInput(
        booking_id=booking.id,
        event_id=booking.event_id,
        user_id=booking.user_id,
        quantity=booking.quantity,
        hold_seconds=res.settings.hold_seconds,
    )


async def handle(res: Resources, temporal: TemporalClient, event: webhooks.WebhookEvent) -> str:
    """Returns "processed" or "duplicate"."""
    async with res.sessionmaker() as session:
        if await webhooks.seen(session, event.id):
            return "duplicate"
        booking = await session.get(Booking, event.data.booking_id)
    if booking is None:
        raise BookingNotFound()
    if event.type == "payment.succeeded":
        if event.data.amount != booking.amount or event.data.currency != booking.currency:
            raise AmountMismatch()
        await booking_client.deliver_payment(
            temporal,
            _booking_input(res, booking),
            PaymentNotice(
                provider_event_id=event.id,
                provider_payment_id=event.data.payment_id,
                amount=event.data.amount,
                currency=event.data.currency,
            ),
            organization_id=await organization_of_event(res.engine, booking.event_id),
        )
    # payment.failed: the hold stays until it ends; refund.succeeded: our refunds are recorded
    # when we make them. Either way, remember the event id so a replay does nothing.
    async with res.sessionmaker.begin() as session:
        await webhooks.remember(session, event.id, event.type, booking.id)
    return "processed"


async def handle_stripe(res: Resources, temporal: TemporalClient, notice: StripeNotice) -> str:
    """A verified Stripe event, acted on once: "processed", "duplicate", or "ignored" (a
    PaymentIntent Evently did not create). The booking is the one whose charge attempt created
    the PaymentIntent (``payment_attempts``), never one the event names by itself."""
    pid = notice.payment_intent_id
    async with res.sessionmaker() as session:
        if await webhooks.seen(session, notice.event_id):
            return "duplicate"
        conn = await session.connection()
        attempt = await records.attempt_by_payment(conn, pid)
        booking = await session.get(Booking, attempt.booking_id) if attempt else None
        charged = await records.has_charge(conn, pid)
        refunded = booking is not None and await records.has_refund(conn, booking.id)
    if booking is None:
        log.warning("stripe event %s: %s is not a payment Evently made", notice.event_id, pid)
        return "ignored"
    if notice.type == "payment_intent.succeeded":
        from evently.payments.stripe import to_minor_units

        expected = to_minor_units(booking.amount, booking.currency)
        if (notice.amount, notice.currency) != (expected, booking.currency.lower()):
            raise AmountMismatch()
        # a charge already recorded whose booking is confirmed (the pay update's own charge)
        # or refunded needs no signal; anything else goes to the workflow, whose late-payment
        # rule settles it (it never charges or refunds twice)
        settled = booking.status == BookingStatus.CONFIRMED or refunded
        if not (charged and settled):
            await booking_client.deliver_payment(
                temporal,
                _booking_input(res, booking),
                PaymentNotice(
                    provider_event_id=notice.event_id,
                    provider_payment_id=pid,
                    amount=booking.amount,
                    currency=booking.currency,
                ),
                organization_id=await organization_of_event(res.engine, booking.event_id),
            )
    elif notice.type == "charge.refunded" and not refunded:
        # Evently records its refunds when it makes them; this one was made elsewhere (the
        # Stripe Dashboard): support reconciles it, the booking is not changed here
        log.warning("stripe refund for booking %s was not made by Evently", booking.id)
    async with res.sessionmaker.begin() as session:
        conn = await session.connection()
        if notice.type == "payment_intent.succeeded":
            await records.settle_attempt(conn, pid, PaymentAttemptStatus.SUCCEEDED)
        elif notice.type == "payment_intent.payment_failed":
            # the hold stays until it ends: the buyer may pay again
            await records.settle_attempt(
                conn, pid, PaymentAttemptStatus.FAILED, notice.failure_code
            )
        await webhooks.remember(session, notice.event_id, notice.type, booking.id)
    return "processed"
