"""The payment providers' webhooks: the generic signed one (the simulated provider's) and
Stripe's. Both take at most ``MAX_BODY`` bytes and act on an event id once."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request

from api.deps import ResourcesDep, TemporalDep
from api.payments import service
from api.problems import problem_responses
from evently.errors import (
    AmountMismatch,
    BookingNotFound,
    InvalidSignature,
    MalformedJson,
    PayloadTooLarge,
    SignatureExpired,
    Unprocessable,
    WebhookDisabled,
    WorkflowTimeout,
)
from evently.payments import webhooks

router = APIRouter(tags=["payments"])
MAX_BODY = 64 * 1024  # both webhooks; a Stripe event is a few kB


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge("The webhook body is too large.")
    return body


@router.post(
    "/payments/webhook",
    responses=problem_responses(
        MalformedJson,
        InvalidSignature,
        SignatureExpired,
        BookingNotFound,
        WebhookDisabled,
        PayloadTooLarge,
        Unprocessable,
        AmountMismatch,
        WorkflowTimeout,
    ),
)
async def payment_webhook(
    request: Request,
    res: ResourcesDep,
    temporal: TemporalDep,
    evently_signature: Annotated[str | None, Header(alias="Evently-Signature")] = None,
) -> dict[str, str]:
    """Signed provider events (`Evently-Signature: t=<unix>,v1=<hex hmac>`); a replayed event
    id is acknowledged without acting twice. The simulated provider's channel: with
    `EVENTLY_PAYMENT_PROVIDER=stripe` it answers 404 `webhook_disabled`."""
    if not res.settings.generic_webhook_enabled:
        raise WebhookDisabled("Payments go through Stripe: use /payments/stripe/webhook.")
    body = await _body(request)
    webhooks.verify(
        res.settings.payment_webhook_secret,
        evently_signature,
        body,
        res.settings.webhook_tolerance_seconds,
    )
    event = webhooks.parse(body)
    status = await service.handle(res, temporal, event)
    return {"status": status, "id": event.id}


@router.post(
    "/payments/stripe/webhook",
    responses=problem_responses(
        MalformedJson,
        InvalidSignature,
        SignatureExpired,
        WebhookDisabled,
        PayloadTooLarge,
        Unprocessable,
        AmountMismatch,
        WorkflowTimeout,
    ),
)
async def stripe_webhook(
    request: Request,
    res: ResourcesDep,
    temporal: TemporalDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> dict[str, str]:
    """Stripe's signed events (`Stripe-Signature`, verified with the SDK and
    `EVENTLY_STRIPE_WEBHOOK_SECRET`): `payment_intent.succeeded` confirms the booking (or
    applies the late-payment rule), `payment_intent.payment_failed` keeps the hold,
    `charge.refunded` is recorded as seen. An event id seen before is acknowledged without
    acting twice; other event types and PaymentIntents Evently did not create are acknowledged
    and ignored. 404 `webhook_disabled` without the webhook secret."""
    secret = res.settings.stripe_webhook_secret
    if secret is None or not res.settings.stripe_webhook_enabled:
        raise WebhookDisabled("Stripe webhooks are not configured (EVENTLY_STRIPE_WEBHOOK_SECRET).")
    from evently.payments import stripe as stripe_payments  # the SDK: only where Stripe is used

    body = await _body(request)
    try:
        event = stripe_payments.construct_event(
            body,
            stripe_signature,
            secret.get_secret_value(),
            tolerance_seconds=res.settings.webhook_tolerance_seconds,
        )
    except stripe_payments.StripeSignatureExpired as exc:
        raise SignatureExpired() from exc
    except stripe_payments.StripeSignatureError as exc:
        raise InvalidSignature(f"The Stripe signature does not verify: {exc}") from exc
    except ValueError as exc:
        raise MalformedJson("The event is not a JSON object.") from exc
    try:
        notice = stripe_payments.notice_from_event(event)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from exc
    if notice is None:
        return {"status": "ignored", "id": str(event.get("id", ""))}
    status = await service.handle_stripe(res, temporal, notice)
    return {"status": status, "id": notice.event_id}
