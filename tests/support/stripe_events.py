"""Stripe's documented JSON shapes, built for tests: PaymentIntents in each state we map, the
402 error of a declined ``confirm=True``, refunds, and signed webhook events.

Used where localstripe does not produce the shape (real Stripe's error body carries the
PaymentIntent; ``charge.refunded`` is never sent by localstripe) — never instead of a call
localstripe serves. Shapes follow https://docs.stripe.com/api/payment_intents/object,
/api/errors, /api/refunds/object and /api/events/object (trimmed to the fields we read plus
their neighbours, so a mapping that reads the wrong field fails).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import stripe

from evently.payments.stripe import signature_header


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def payment_intent(
    status: str,
    *,
    intent_id: str | None = None,
    amount: int = 2500,
    currency: str = "eur",
    last_payment_error: dict[str, Any] | None = None,
    next_action: dict[str, Any] | None = None,
    cancellation_reason: str | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    pid = intent_id or _id("pi")
    return {
        "id": pid,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "capture_method": "automatic_async",
        "cancellation_reason": cancellation_reason,
        "client_secret": f"{pid}_secret_{uuid.uuid4().hex[:24]}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": currency,
        "last_payment_error": last_payment_error,
        "latest_charge": _id("ch") if status in {"succeeded", "requires_payment_method"} else None,
        "livemode": False,
        "metadata": metadata or {},
        "next_action": next_action,
        "payment_method": _id("pm"),
        "payment_method_types": ["card"],
        "status": status,
    }


def card_declined_error(
    decline_code: str = "insufficient_funds", *, code: str = "card_declined"
) -> dict[str, Any]:
    """A card error as it sits in last_payment_error (and in a 402 answer's ``error``)."""
    return {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "message": "Your card has insufficient funds.",
        "charge": _id("ch"),
        "doc_url": f"https://docs.stripe.com/error-codes/{code}",
    }


def declined_intent(decline_code: str = "insufficient_funds") -> dict[str, Any]:
    return payment_intent(
        "requires_payment_method", last_payment_error=card_declined_error(decline_code)
    )


def three_d_secure_intent() -> dict[str, Any]:
    return payment_intent(
        "requires_action",
        next_action={
            "type": "use_stripe_sdk",
            "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://..."},
        },
    )


def error_body_with_intent(intent: dict[str, Any]) -> dict[str, Any]:
    """The ``error`` object real Stripe answers (HTTP 402) when ``confirm=True`` is declined."""
    error = dict(intent["last_payment_error"])
    error["payment_intent"] = intent
    return error


def refund(status: str, *, failure_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": _id("re"),
        "object": "refund",
        "amount": 2500,
        "currency": "eur",
        "failure_reason": failure_reason,
        "metadata": {},
        "payment_intent": _id("pi"),
        "status": status,
    }


def refunded_charge(payment_intent: str, *, amount_refunded: int = 2500) -> dict[str, Any]:
    """A charge as ``charge.refunded`` carries it (https://docs.stripe.com/api/charges/object)."""
    return {
        "id": _id("ch"),
        "object": "charge",
        "amount": 2500,
        "amount_captured": 2500,
        "amount_refunded": amount_refunded,
        "captured": True,
        "currency": "eur",
        "payment_intent": payment_intent,
        "refunded": amount_refunded >= 2500,
        "status": "succeeded",
    }


def event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
) -> bytes:
    """A webhook body in Stripe's event envelope (snapshot event)."""
    return json.dumps(
        {
            "id": event_id or _id("evt"),
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(time.time()) if created is None else created,
            "data": {"object": data_object},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
    ).encode()


def signed_event(
    event_type: str,
    data_object: dict[str, Any],
    secret: str,
    *,
    event_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, str]:
    """(body, Stripe-Signature header) as Stripe would deliver them."""
    body = event(event_type, data_object, event_id=event_id, created=timestamp)
    return body, signature_header(body, secret, timestamp=timestamp)
