"""A verified provider event, acted on once: a successful payment goes to the booking's
workflow (which applies the late-payment rule when the hold is over)."""

from __future__ import annotations

from evently.db.models import Booking
from evently.errors import AmountMismatch, BookingNotFound
from evently.infra.resources import Resources
from evently.payments import webhooks
from workflows.booking import client as booking_client
from workflows.booking.contract import BookingInput, PaymentNotice
from workflows.connection import TemporalClient


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
            BookingInput(
                booking_id=booking.id,
                event_id=booking.event_id,
                user_id=booking.user_id,
                quantity=booking.quantity,
                hold_seconds=res.settings.hold_seconds,
            ),
            PaymentNotice(
                provider_event_id=event.id,
                provider_payment_id=event.data.payment_id,
                amount=event.data.amount,
                currency=event.data.currency,
            ),
        )
    # payment.failed: the hold stays until it ends; refund.succeeded: our refunds are recorded
    # when we make them. Either way, remember the event id so a replay does nothing.
    async with res.sessionmaker.begin() as session:
        await webhooks.remember(session, event.id, event.type, booking.id)
    return "processed"
