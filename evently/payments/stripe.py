"""Stripe behind the payment-provider interface, with the official SDK's async methods.

- ``charge`` creates and confirms a PaymentIntent in one call (``confirm=True``) with the
  caller's idempotency key, and maps the answer to succeeded / failed (card errors carry a
  failure code) / requires_action (3-D Secure: the result carries the ``client_secret`` the
  buyer's browser needs; the outcome arrives later by webhook).
- ``retrieve`` reads a PaymentIntent we recorded, so a retried activity looks its attempt up
  instead of creating a second PaymentIntent. Stripe honours idempotency keys for 24 hours;
  local emulators (localstripe) ignore them, so our own record of attempts is what really
  prevents a double charge.
- ``refund`` refunds a PaymentIntent (or a charge) with an idempotency key, and first looks for
  a refund it already made under that key (the key is kept in the refund's metadata).
- ``construct_event`` verifies a webhook (``Stripe-Signature``) with the SDK and raises
  ``StripeSignatureError`` on a bad or stale signature; ``signature_header`` builds a valid
  header the way Stripe does (for tests and local tools).

Errors that are not about the payment itself (network, rate limit, a wrong API key) propagate
as ``stripe.StripeError`` subclasses: the activity's retry policy decides.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe

from evently.payments.provider import PaymentStatus, ProviderResult

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams, RefundCreateParams, RefundListParams

    from evently.settings import Settings

# https://docs.stripe.com/currencies: amounts are in the currency's minor unit
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    | {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
)
THREE_DECIMAL_CURRENCIES = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})

IDEMPOTENCY_METADATA_KEY = "evently_idempotency_key"


class StripeSignatureError(ValueError):
    """A webhook whose ``Stripe-Signature`` does not verify: wrong secret, tampered body,
    missing header, or a timestamp outside the tolerance (a replay)."""


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``Decimal("12.50"), "EUR"`` → ``1250``; refuses an amount the currency cannot carry
    (``Decimal("10.5"), "JPY"``) instead of rounding money."""
    cur = currency.lower()
    exponent = 0 if cur in ZERO_DECIMAL_CURRENCIES else 3 if cur in THREE_DECIMAL_CURRENCIES else 2
    minor = amount.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} has more decimals than the currency allows")
    if cur in THREE_DECIMAL_CURRENCIES and int(minor) % 10:
        # Stripe: three-decimal amounts must be rounded to the nearest ten
        raise ValueError(f"{amount} {currency.upper()}: Stripe needs a multiple of 0.010")
    return int(minor)


def failure_code_of(error: Mapping[str, Any] | None) -> str:
    """Our failure code for a Stripe error object (``last_payment_error`` or an API error):
    the issuer's ``decline_code`` when a card was declined (``insufficient_funds``), else the
    error ``code`` (``expired_card``, ``payment_intent_authentication_failure``)."""
    if not error:
        return "payment_failed"
    code = error.get("code")
    decline = error.get("decline_code")
    if code == "card_declined" and decline and decline != "generic_decline":
        return str(decline)
    return str(code or decline or "payment_failed")


def result_from_payment_intent(intent: Mapping[str, Any]) -> ProviderResult:
    """Map a PaymentIntent (Stripe's JSON shape) to our result.

    succeeded → SUCCEEDED; requires_action → REQUIRES_ACTION with the client_secret;
    processing → PROCESSING; requires_payment_method (a declined or failed-authentication
    attempt) and canceled → FAILED with a failure code. requires_confirmation and
    requires_capture cannot follow a ``confirm=True`` with automatic capture: ValueError."""
    pid = str(intent["id"])
    status = intent.get("status")
    if status == "succeeded":
        return ProviderResult(pid, True, status=PaymentStatus.SUCCEEDED)
    if status == "requires_action":
        return ProviderResult(
            pid,
            False,
            status=PaymentStatus.REQUIRES_ACTION,
            client_secret=intent.get("client_secret"),
        )
    if status == "processing":
        return ProviderResult(pid, False, status=PaymentStatus.PROCESSING)
    if status == "requires_payment_method":
        code = failure_code_of(intent.get("last_payment_error"))
        return ProviderResult(pid, False, code, status=PaymentStatus.FAILED)
    if status == "canceled":
        reason = intent.get("cancellation_reason")
        return ProviderResult(pid, False, f"canceled:{reason}" if reason else "canceled")
    raise ValueError(f"PaymentIntent {pid} is {status!r}, which a confirmed charge never is")


def result_from_card_error(error: Mapping[str, Any]) -> ProviderResult:
    """Map the ``error`` object of a 402 answer to ``confirm=True``. Stripe puts the
    PaymentIntent in it (``error.payment_intent``); localstripe only names the charge."""
    intent = error.get("payment_intent")
    if isinstance(intent, Mapping) and intent.get("id"):
        result = result_from_payment_intent(intent)
        if result.status is PaymentStatus.FAILED:
            return result
    pid = str(intent.get("id") if isinstance(intent, Mapping) else intent or "")
    pid = pid or str(error.get("charge") or "")
    return ProviderResult(pid, False, failure_code_of(error), status=PaymentStatus.FAILED)


def result_from_refund(refund: Mapping[str, Any]) -> ProviderResult:
    """succeeded → SUCCEEDED; pending → PROCESSING (accepted, settles by webhook);
    requires_action → REQUIRES_ACTION (rare: some non-card methods); failed/canceled → FAILED."""
    rid = str(refund["id"])
    status = refund.get("status")
    if status == "succeeded":
        return ProviderResult(rid, True)
    if status == "pending":
        return ProviderResult(rid, False, status=PaymentStatus.PROCESSING)
    if status == "requires_action":
        return ProviderResult(rid, False, status=PaymentStatus.REQUIRES_ACTION)
    return ProviderResult(rid, False, str(refund.get("failure_reason") or status or "failed"))


def _json(obj: stripe.StripeObject) -> dict[str, Any]:
    return obj.to_dict(recursive=True)


class StripeProvider:
    """Charges and refunds through Stripe's API (or an emulator at ``api_base``)."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._http = stripe.HTTPXClient(timeout=timeout_seconds)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeProvider:
        key = settings.stripe_secret_key
        if key is None or not key.get_secret_value():
            raise ValueError("EVENTLY_PAYMENT_PROVIDER=stripe needs EVENTLY_STRIPE_SECRET_KEY")
        return cls(key.get_secret_value(), api_base=settings.stripe_api_base)

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        params: PaymentIntentCreateParams = {
            "amount": to_minor_units(amount, currency),
            "currency": currency.lower(),
            "payment_method": payment_method,
            "confirm": True,
            "metadata": {**(metadata or {}), IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.CardError as exc:
            return result_from_card_error(_error_object(exc))
        except stripe.InvalidRequestError as exc:
            # an unknown or unusable payment method is the buyer's problem, not a bug to retry
            # (Stripe: resource_missing on param payment_method; localstripe: a bare 404; the
            # payment method is the only object this request names)
            if (
                exc.param == "payment_method"
                or exc.code == "resource_missing"
                or exc.http_status == 404
            ):
                return ProviderResult("", False, "invalid_payment_method")
            raise
        return result_from_payment_intent(_json(intent))

    async def retrieve(self, intent_id: str) -> ProviderResult:
        """The current state of a PaymentIntent we created (a retried charge, a late check)."""
        intent = await self.client.v1.payment_intents.retrieve_async(intent_id)
        return result_from_payment_intent(_json(intent))

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult:
        """Refund ``amount`` of a PaymentIntent (``pi_...``) or a charge (``ch_...``)."""
        query: RefundListParams = {"limit": 100}
        params: RefundCreateParams = {
            "amount": to_minor_units(amount, currency),
            "metadata": {IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        if charge_id.startswith("ch_"):
            query["charge"] = params["charge"] = charge_id
        else:
            query["payment_intent"] = params["payment_intent"] = charge_id
        # our own guard: an emulator ignores idempotency keys, and a retry after a crash must
        # find the refund it made (the listing is strongly consistent, unlike search)
        for earlier in (await self.client.v1.refunds.list_async(query)).data:
            found = _json(earlier)
            if (found.get("metadata") or {}).get(IDEMPOTENCY_METADATA_KEY) == idempotency_key:
                return result_from_refund(found)
        refund = await self.client.v1.refunds.create_async(
            params, {"idempotency_key": idempotency_key}
        )
        return result_from_refund(_json(refund))


def _error_object(exc: stripe.StripeError) -> Mapping[str, Any]:
    body = exc.json_body if isinstance(exc.json_body, Mapping) else {}
    error = body.get("error")
    return error if isinstance(error, Mapping) else {"code": exc.code}


# ---- webhooks ----------------------------------------------------------------------------


def construct_event(
    payload: bytes, sig_header: str | None, secret: str, *, tolerance_seconds: int = 300
) -> stripe.Event:
    """Verify ``payload`` against its ``Stripe-Signature`` header and parse it. Raises
    ``StripeSignatureError`` when the signature is missing, wrong or older than the
    tolerance; ``ValueError`` when a correctly signed body is not JSON."""
    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            payload, sig_header, secret, tolerance_seconds
        )
    except stripe.SignatureVerificationError as exc:
        raise StripeSignatureError(str(exc)) from exc
    return event


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` value for ``payload`` as Stripe computes it:
    ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"
