"""Stripe behind the payment-provider interface, with the official SDK's async methods.

- A charge is two calls (evently/payments/provider.py): ``prepare_charge`` creates an
  unconfirmed PaymentIntent (the booking and attempt in its metadata)
  whose id the activity records in its own attempt record; ``confirm_charge`` confirms that
  PaymentIntent and maps the answer to succeeded / failed (card errors carry a failure code) /
  requires_action (3-D Secure: the result carries the ``client_secret`` the buyer's browser
  needs; the outcome arrives later by webhook). Both calls carry idempotency keys (Stripe honours
  them for 24 hours); local emulators (localstripe) ignore them, so the attempt record is what
  really prevents a double charge: a retried activity confirms (or just reads) the PaymentIntent
  it recorded, and an unconfirmed PaymentIntent left by a crash moves no money.
- ``cancel_charge`` cancels a superseded PaymentIntent still waiting for 3-D Secure, so a buyer
  who tries again cannot end up paying twice; it reports SUCCEEDED when the buyer won the race.
- ``refund`` refunds a PaymentIntent (or a charge) with an idempotency key, and first looks for
  a refund it already made under that key (the key is kept in the refund's metadata).
- ``construct_event`` verifies a webhook (``Stripe-Signature``) with the SDK and raises
  ``StripeSignatureError`` on a bad or stale signature; ``signature_header`` builds a valid
  header the way Stripe does (for tests and local tools); ``notice_from_event`` reads the three
  event types we act on.

Errors that are not about the payment itself (network, rate limit, a wrong API key) propagate
as ``stripe.StripeError`` subclasses: the activity's retry policy decides.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import stripe

from evently.enums import PaymentStatus
from evently.payments.provider import ProviderResult

if TYPE_CHECKING:
    from stripe.params import (
        PaymentIntentConfirmParams,
        PaymentIntentCreateParams,
        RefundCreateParams,
        RefundListParams,
    )

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


class StripeSignatureExpired(StripeSignatureError):
    """A correctly signed webhook whose timestamp is older than the tolerance."""


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
    processing → PROCESSING; requires_confirmation (prepared, not confirmed) →
    REQUIRES_CONFIRMATION; requires_payment_method after a declined or failed-authentication
    attempt, and canceled → FAILED with a failure code. requires_capture cannot follow a
    confirmation with automatic capture: ValueError."""
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
    if status == "requires_confirmation":
        return ProviderResult(pid, False, status=PaymentStatus.REQUIRES_CONFIRMATION)
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
        return_url: str | None = None,
    ) -> None:
        # where Stripe sends a buyer back after a redirect-based authentication; Stripe asks
        # for it when the account accepts redirect-based payment methods (None: not sent)
        self.return_url = return_url
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
        return cls(
            key.get_secret_value(),
            api_base=settings.stripe_api_base,
            return_url=settings.stripe_return_url,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def prepare_charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        """An unconfirmed PaymentIntent for ``payment_method``: no money moves yet."""
        try:
            minor = to_minor_units(amount, currency)
        except ValueError:
            return ProviderResult("", False, "invalid_amount")
        params: PaymentIntentCreateParams = {
            "amount": minor,
            "currency": currency.lower(),
            "payment_method": payment_method,
            "metadata": {**(metadata or {}), IDEMPOTENCY_METADATA_KEY: idempotency_key},
        }
        try:
            intent = await self.client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key}
            )
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

    async def confirm_charge(
        self, provider_payment_id: str, *, idempotency_key: str, payment_method: str, fresh: bool
    ) -> ProviderResult:
        """Confirm the PaymentIntent we prepared and recorded; a retry (``fresh=False``) reads
        it first and confirms only one that is still unconfirmed."""
        pid = provider_payment_id
        if not fresh:
            current = await self.retrieve(pid)
            if current.status is not PaymentStatus.REQUIRES_CONFIRMATION:
                return current
        params: PaymentIntentConfirmParams | None = (
            {"return_url": self.return_url} if self.return_url else None
        )
        try:
            intent = await self.client.v1.payment_intents.confirm_async(
                pid, params, {"idempotency_key": f"{idempotency_key}-confirm"}
            )
        except stripe.CardError as exc:
            declined = result_from_card_error(_error_object(exc))
            # name our PaymentIntent (localstripe's 402 names only the charge)
            return ProviderResult(pid, False, declined.failure_code)
        except stripe.InvalidRequestError:
            # confirmed meanwhile (payment_intent_unexpected_state; localstripe: a bare 400):
            # its state is the answer
            current = await self.retrieve(pid)
            if current.status is PaymentStatus.REQUIRES_CONFIRMATION:
                raise
            return current
        return result_from_payment_intent(_json(intent))

    async def cancel_charge(self, provider_payment_id: str) -> ProviderResult:
        """Cancel an unfinished PaymentIntent; its state afterwards (the buyer may have
        completed it first: then SUCCEEDED or PROCESSING, and it stays)."""
        try:
            intent = await self.client.v1.payment_intents.cancel_async(provider_payment_id)
        except stripe.InvalidRequestError:
            return await self.retrieve(provider_payment_id)  # not cancelable: final already
        return result_from_payment_intent(_json(intent))

    async def charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        """Prepare and confirm in one go, without an attempt record in between (tools and
        tests; the charge activity records the PaymentIntent between the two steps)."""
        prepared = await self.prepare_charge(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            payment_method=payment_method,
            metadata=metadata,
        )
        if prepared.status is not PaymentStatus.REQUIRES_CONFIRMATION:
            return prepared
        return await self.confirm_charge(
            prepared.provider_payment_id,
            idempotency_key=idempotency_key,
            payment_method=payment_method,
            fresh=True,
        )

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
) -> dict[str, Any]:
    """Verify ``payload`` against its ``Stripe-Signature`` header with the SDK
    (``stripe.Webhook.construct_event``) and return the event as plain JSON. Raises
    ``StripeSignatureError`` when the signature is missing, wrong or older than the tolerance
    (``StripeSignatureExpired``); ``ValueError`` when a correctly signed body is not a JSON
    object."""
    try:
        payload.decode("utf-8")  # the SDK decodes before it verifies; Stripe sends UTF-8 only
    except UnicodeDecodeError as exc:
        raise StripeSignatureError("the body is not UTF-8, so it cannot carry a signature") from exc
    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            payload, sig_header, secret, tolerance_seconds
        )
    except stripe.SignatureVerificationError as exc:
        if str(exc).startswith("Timestamp outside the tolerance zone"):
            raise StripeSignatureExpired(str(exc)) from exc
        raise StripeSignatureError(str(exc)) from exc
    except (AttributeError, TypeError) as exc:  # verified, but JSON that is not an object
        raise ValueError("the event is not a JSON object") from exc
    return _json(event)


# the events we act on (subscribe the endpoint to these; any other is acknowledged, ignored)
HANDLED_EVENTS = frozenset(
    {"payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"}
)


@dataclass(frozen=True)
class StripeNotice:
    """What a handled event tells us, read from Stripe's event JSON."""

    event_id: str
    type: str
    payment_intent_id: str
    amount: int  # minor units: the PaymentIntent's amount, or the charge's amount_refunded
    currency: str  # lower case, as Stripe writes it
    failure_code: str | None = None


def notice_from_event(event: Mapping[str, Any]) -> StripeNotice | None:
    """The notice of a handled event; None for any other type. ValueError when the event
    lacks what we read (an id, its PaymentIntent, an amount)."""
    event_id = event.get("id")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise ValueError("id: a Stripe event id (at most 200 characters) is required")
    kind = event.get("type")
    if kind not in HANDLED_EVENTS:
        return None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise ValueError("data.object: the event carries no object")
    if kind == "charge.refunded":
        intent, amount = obj.get("payment_intent"), obj.get("amount_refunded")
    else:
        intent, amount = obj.get("id"), obj.get("amount")
    currency = obj.get("currency")
    if not isinstance(intent, str) or not 0 < len(intent) <= 100:
        raise ValueError("data.object: no PaymentIntent id")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ValueError("data.object: no amount")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ValueError("data.object: no currency")
    failure = None
    if kind == "payment_intent.payment_failed":
        error = obj.get("last_payment_error")
        failure = failure_code_of(error if isinstance(error, Mapping) else None)
    return StripeNotice(str(event_id), str(kind), intent, amount, currency.lower(), failure)


def signature_header(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` value for ``payload`` as Stripe computes it:
    ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<payload>")>``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"
