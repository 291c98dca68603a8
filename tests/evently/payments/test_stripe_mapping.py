"""What the Stripe provider makes of Stripe's answers, fed Stripe's documented JSON shapes.

These are the answers localstripe does not give (see test_stripe_localstripe.py): an issuer's
decline code, a 402 whose body carries the PaymentIntent, a PaymentIntent still
``processing`` or ``canceled``, pending and failed refunds. No HTTP client is involved: the
functions under test are the ones the provider applies to every answer it gets.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
import stripe

from evently.enums import PaymentStatus
from evently.payments.factory import get_provider
from evently.payments.provider import ProviderResult
from evently.payments.stripe import (
    StripeNotice,
    StripeProvider,
    StripeSignatureError,
    StripeSignatureExpired,
    construct_event,
    notice_from_event,
    result_from_card_error,
    result_from_payment_intent,
    result_from_refund,
    signature_header,
    to_minor_units,
)
from evently.settings import Settings
from evently.tickets.signing import generate_keypair, private_key_b64
from tests.support import stripe_events as se

SECRET = "whsec_test_evently"


def test_succeeded_intent() -> None:
    intent = se.payment_intent("succeeded")
    assert result_from_payment_intent(intent) == ProviderResult(
        intent["id"], True, status=PaymentStatus.SUCCEEDED
    )


@pytest.mark.parametrize(
    ("decline_code", "expected"),
    [
        ("insufficient_funds", "insufficient_funds"),
        ("lost_card", "lost_card"),
        ("generic_decline", "card_declined"),
    ],
)
def test_declined_intent_carries_the_issuers_reason(decline_code: str, expected: str) -> None:
    result = result_from_payment_intent(se.declined_intent(decline_code))
    assert (result.status, result.succeeded, result.failure_code) == (
        PaymentStatus.FAILED,
        False,
        expected,
    )


def test_expired_card_keeps_its_code() -> None:
    error = se.card_declined_error(code="expired_card", decline_code="expired_card")
    intent = se.payment_intent("requires_payment_method", last_payment_error=error)
    assert result_from_payment_intent(intent).failure_code == "expired_card"


def test_three_d_secure_intent_hands_out_the_client_secret() -> None:
    intent = se.three_d_secure_intent()
    result = result_from_payment_intent(intent)
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert not result.succeeded
    assert result.client_secret == intent["client_secret"]
    assert result.provider_payment_id == intent["id"]


def test_processing_and_canceled_intents() -> None:
    assert result_from_payment_intent(se.payment_intent("processing")).status == "processing"
    canceled = result_from_payment_intent(
        se.payment_intent("canceled", cancellation_reason="abandoned")
    )
    assert (canceled.status, canceled.failure_code) == (PaymentStatus.FAILED, "canceled:abandoned")


def test_a_prepared_intent_awaits_confirmation() -> None:
    intent = se.payment_intent("requires_confirmation")
    result = result_from_payment_intent(intent)
    assert (result.status, result.provider_payment_id) == (
        PaymentStatus.REQUIRES_CONFIRMATION,
        intent["id"],
    )
    assert not result.status.is_final


def test_a_state_our_automatic_capture_never_has_is_refused() -> None:
    with pytest.raises(ValueError, match="requires_capture"):
        result_from_payment_intent(se.payment_intent("requires_capture"))


def test_real_stripes_402_names_the_payment_intent() -> None:
    intent = se.declined_intent("insufficient_funds")
    result = result_from_card_error(se.error_body_with_intent(intent))
    assert (result.provider_payment_id, result.failure_code) == (intent["id"], "insufficient_funds")


def test_a_402_without_the_intent_falls_back_to_the_charge() -> None:
    """localstripe's shape: ``{"code": "card_declined", "charge": "ch_..."}``."""
    result = result_from_card_error({"code": "card_declined", "charge": "ch_123"})
    assert (result.provider_payment_id, result.failure_code) == ("ch_123", "card_declined")
    assert result.status is PaymentStatus.FAILED


@pytest.mark.parametrize(
    ("status", "expected", "succeeded"),
    [
        ("succeeded", PaymentStatus.SUCCEEDED, True),
        ("pending", PaymentStatus.PROCESSING, False),
        ("requires_action", PaymentStatus.REQUIRES_ACTION, False),
        ("failed", PaymentStatus.FAILED, False),
        ("canceled", PaymentStatus.FAILED, False),
    ],
)
def test_refund_states(status: str, expected: PaymentStatus, succeeded: bool) -> None:
    result = result_from_refund(se.refund(status, failure_reason="expired_or_canceled_card"))
    assert (result.status, result.succeeded) == (expected, succeeded)
    if expected is PaymentStatus.FAILED:
        assert result.failure_code == "expired_or_canceled_card"


def test_two_state_results_keep_working() -> None:
    assert ProviderResult("x", True).status is PaymentStatus.SUCCEEDED
    assert ProviderResult("x", False, "card_declined").status is PaymentStatus.FAILED
    with pytest.raises(ValueError, match="contradicts"):
        ProviderResult("x", True, status=PaymentStatus.REQUIRES_ACTION)


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("0.99", "usd", 99),
        ("1500", "JPY", 1500),
        ("5000", "krw", 5000),
        ("1.230", "KWD", 1230),
        ("100", "eur", 10000),
    ],
)
def test_minor_units(amount: str, currency: str, minor: int) -> None:
    assert to_minor_units(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"), [("10.5", "JPY"), ("1.005", "EUR"), ("1.234", "BHD")]
)
def test_amounts_a_currency_cannot_carry_are_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValueError, match=currency):
        to_minor_units(Decimal(amount), currency)


# ---- webhook signatures ------------------------------------------------------------------


def test_a_correctly_signed_event_is_accepted() -> None:
    intent = se.payment_intent("succeeded", metadata={"booking_id": "b-1"})
    body, header = se.signed_event("payment_intent.succeeded", intent, SECRET, event_id="evt_1")
    event = construct_event(body, header, SECRET)
    assert (event["id"], event["type"]) == ("evt_1", "payment_intent.succeeded")
    assert event["data"]["object"]["id"] == intent["id"]
    assert event["data"]["object"]["metadata"]["booking_id"] == "b-1"


def test_a_wrong_secret_is_refused() -> None:
    body, header = se.signed_event(
        "payment_intent.succeeded", se.payment_intent("succeeded"), SECRET
    )
    with pytest.raises(StripeSignatureError):
        construct_event(body, header, "whsec_someone_else")


def test_a_tampered_body_is_refused() -> None:
    body, header = se.signed_event(
        "payment_intent.succeeded", se.payment_intent("succeeded"), SECRET
    )
    with pytest.raises(StripeSignatureError):
        construct_event(body.replace(b'"succeeded"', b'"canceled"', 1), header, SECRET)


def test_a_stale_timestamp_is_refused() -> None:
    stale = int(time.time()) - 301
    body, header = se.signed_event(
        "payment_intent.succeeded", se.payment_intent("succeeded"), SECRET, timestamp=stale
    )
    with pytest.raises(StripeSignatureExpired, match="tolerance"):
        construct_event(body, header, SECRET)
    # inside a wider tolerance the same delivery verifies
    assert construct_event(body, header, SECRET, tolerance_seconds=600)["type"]


def test_a_body_that_is_not_utf8_cannot_carry_a_signature() -> None:
    body = b"\xff\xfe{}"
    with pytest.raises(StripeSignatureError):
        construct_event(body, signature_header(body, SECRET), SECRET)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"event"', b"3"])
def test_a_signed_body_that_is_not_an_object_is_malformed(body: bytes) -> None:
    with pytest.raises(ValueError, match="object") as raised:
        construct_event(body, signature_header(body, SECRET), SECRET)
    assert not isinstance(raised.value, StripeSignatureError)


# ---- what the handled events tell us -------------------------------------------------------


def _event(body: bytes) -> dict[str, Any]:
    return construct_event(body, signature_header(body, SECRET), SECRET)


def test_a_succeeded_intent_names_its_payment_and_amount() -> None:
    intent = se.payment_intent("succeeded", amount=4500, currency="eur")
    notice = notice_from_event(_event(se.event("payment_intent.succeeded", intent, event_id="e1")))
    assert notice == StripeNotice("e1", "payment_intent.succeeded", intent["id"], 4500, "eur")


def test_a_failed_intent_carries_the_issuers_reason() -> None:
    intent = se.declined_intent("insufficient_funds")
    notice = notice_from_event(_event(se.event("payment_intent.payment_failed", intent)))
    assert notice is not None
    assert (notice.payment_intent_id, notice.failure_code) == (intent["id"], "insufficient_funds")


def test_a_refunded_charge_names_its_payment_intent() -> None:
    charge = se.refunded_charge("pi_123", amount_refunded=2500)
    notice = notice_from_event(_event(se.event("charge.refunded", charge)))
    assert notice is not None
    assert (notice.payment_intent_id, notice.amount, notice.currency) == ("pi_123", 2500, "eur")


def test_other_event_types_are_not_ours_to_act_on() -> None:
    body = se.event("customer.created", {"id": "cus_1", "object": "customer"})
    assert notice_from_event(_event(body)) is None


@pytest.mark.parametrize(
    "event",
    [
        {"type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},  # no id
        {"id": "e", "type": "payment_intent.succeeded", "data": {}},
        {"id": "e", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}},
        {"id": "x" * 201, "type": "charge.refunded", "data": {"object": {}}},
        {"id": "e", "type": "charge.refunded", "data": {"object": {"amount_refunded": 1}}},
        {
            "id": "e",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "amount": True, "currency": "eur"}},
        },
    ],
)
def test_a_handled_event_without_what_we_read_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"id|object|amount|currency"):
        notice_from_event(event)


@pytest.mark.parametrize("header", [None, "", "t=123", "v1=abc", "garbage"])
def test_a_missing_or_malformed_header_is_refused(header: str | None) -> None:
    body = se.event("charge.refunded", {"id": "ch_1", "object": "charge"})
    with pytest.raises(StripeSignatureError):
        construct_event(body, header, SECRET)


def test_signature_header_follows_stripes_scheme() -> None:
    """Cross-checked against the SDK's own verifier (not our construct_event)."""
    body = b'{"id": "evt_2", "object": "event"}'
    header = signature_header(body, SECRET, timestamp=int(time.time()))
    assert stripe.WebhookSignature.verify_header(body.decode(), header, SECRET, 300)


# ---- settings and factory ----------------------------------------------------------------


TICKET_KEY = private_key_b64(generate_keypair()[0])  # production refuses the dev key


def production(**values: object) -> Settings:
    """Production settings from exactly these values (no environment, no .env file)."""
    base = {
        "env": "production",
        "jwt_secret": "x" * 40,
        "payment_webhook_secret": "real-one",
        "ticket_signing_key": TICKET_KEY,
    }
    return Settings.model_validate(base | values)


def test_production_refuses_stripe_without_its_secrets() -> None:
    with pytest.raises(ValueError, match="EVENTLY_STRIPE_SECRET_KEY") as refused:
        production(payment_provider="stripe")
    assert "EVENTLY_STRIPE_WEBHOOK_SECRET" in str(refused.value)
    with pytest.raises(ValueError, match="EVENTLY_STRIPE_WEBHOOK_SECRET"):
        production(payment_provider="stripe", stripe_secret_key="sk_live_1")
    with pytest.raises(ValueError, match="EVENTLY_STRIPE_SECRET_KEY"):
        production(payment_provider="stripe", stripe_secret_key=" ", stripe_webhook_secret="w")


def test_production_accepts_stripe_with_both_secrets() -> None:
    settings = production(
        payment_provider="stripe", stripe_secret_key="sk_live_1", stripe_webhook_secret="whsec_1"
    )
    assert settings.stripe_secret_key is not None
    assert settings.stripe_secret_key.get_secret_value() == "sk_live_1"
    assert "sk_live_1" not in repr(settings)  # a secret never lands in a log line


def test_with_stripe_the_generic_webhook_and_its_secret_are_off() -> None:
    settings = Settings.model_validate(
        {
            "env": "production",
            "jwt_secret": "x" * 40,
            "payment_provider": "stripe",
            "stripe_secret_key": "sk_live_1",
            "stripe_webhook_secret": "whsec_1",
            "ticket_signing_key": TICKET_KEY,
        }
    )  # no EVENTLY_PAYMENT_WEBHOOK_SECRET needed
    assert (settings.generic_webhook_enabled, settings.stripe_webhook_enabled) == (False, True)
    development = Settings.model_validate({})
    assert (development.generic_webhook_enabled, development.stripe_webhook_enabled) == (
        True,
        False,
    )


def test_production_still_refuses_the_simulated_provider() -> None:
    with pytest.raises(ValueError, match="simulated"):
        production(payment_provider="simulated")


def test_an_unknown_provider_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="payment_provider"):
        Settings.model_validate({"payment_provider": "paypal"})


async def test_get_provider_builds_stripe_from_settings() -> None:
    settings = Settings.model_validate(
        {
            "payment_provider": "stripe",
            "stripe_secret_key": "sk_test_1",
            "stripe_api_base": "http://127.0.0.1:1",
        }
    )
    provider = get_provider("stripe", settings)
    assert isinstance(provider, StripeProvider)
    assert provider.name == "stripe"
    await provider.aclose()
    with pytest.raises(ValueError, match="EVENTLY_STRIPE_SECRET_KEY"):
        get_provider("stripe", Settings.model_validate({}))
