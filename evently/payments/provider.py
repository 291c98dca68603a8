"""Payment providers behind one interface: the built-in `simulated` one and Stripe
(evently/payments/stripe.py).

A charge is two calls, so that a retried activity never moves money twice even where the
provider ignores idempotency keys (a local emulator does): ``prepare_charge`` creates the
payment at the provider without moving money (a Stripe PaymentIntent, unconfirmed), the caller
records its id in its own attempt record, then ``confirm_charge`` moves the money for the
recorded id only. A retry finds the record and confirms (or just reads) the same payment.

The `simulated` provider follows Stripe's test conventions: ``pm_card_visa`` (and the other
``pm_card_*`` success cards) succeed, ``pm_card_chargeDeclined*`` are declined, and
``pm_card_authenticationRequired`` asks for 3-D Secure (``requires_action``; in development the
outcome then arrives through the generic signed webhook), and ``pm_card_refundFail`` is charged
but every refund of that charge is refused (``failed``, ``refund_failed``), as Stripe's test card
of that name. Its ids derive from the idempotency key, so a retried call returns the same
payment, as a real provider does (a charge of the refund-refusing card is marked in its id, the
only thing ``refund`` is given).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from evently.enums import PaymentStatus

SUCCEEDING_CARDS = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
)
DECLINE_CODES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}
# Stripe's test PaymentMethod that needs 3-D Secure on every charge
AUTHENTICATION_REQUIRED_CARDS = frozenset({"pm_card_authenticationRequired"})
# Stripe's test PaymentMethod whose charge succeeds and whose refunds fail
REFUND_FAILING_CARDS = frozenset({"pm_card_refundFail"})
_REFUND_FAILS = "sim_chrf"  # the id prefix of such a charge


@dataclass(frozen=True)
class ProviderResult:
    provider_payment_id: str
    succeeded: bool
    failure_code: str | None = None
    # None means "derive from succeeded", so the two-state results stay valid as they are
    status: PaymentStatus | None = None
    # Stripe's PaymentIntent client_secret, set when status is REQUIRES_ACTION
    client_secret: str | None = None

    def __post_init__(self) -> None:
        if self.status is None:
            derived = PaymentStatus.SUCCEEDED if self.succeeded else PaymentStatus.FAILED
            object.__setattr__(self, "status", derived)
        elif self.succeeded != (self.status is PaymentStatus.SUCCEEDED):
            raise ValueError(f"succeeded={self.succeeded} contradicts status={self.status}")

    @property
    def state(self) -> PaymentStatus:
        """``status``, never None (set by ``__post_init__``)."""
        assert self.status is not None
        return self.status


class PaymentProvider(Protocol):
    name: str

    async def prepare_charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        """Create the payment without moving money: REQUIRES_CONFIRMATION with its id, or
        FAILED when the payment method is unusable (the buyer's failure, nothing created)."""
        ...

    async def confirm_charge(
        self, provider_payment_id: str, *, idempotency_key: str, payment_method: str, fresh: bool
    ) -> ProviderResult:
        """Move the money of a prepared payment, once. ``fresh``: prepared by this very call
        of the activity (else a retry: read its state first, confirm only if still
        unconfirmed)."""
        ...

    async def cancel_charge(self, provider_payment_id: str) -> ProviderResult:
        """Make a superseded, unfinished payment unable to succeed (3-D Secure never
        completed); answers its state afterwards: FAILED ``canceled``, or SUCCEEDED /
        PROCESSING when the buyer finished it first."""
        ...

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult: ...


def _provider_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class SimulatedProvider:
    name = "simulated"

    async def prepare_charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        prefix = _REFUND_FAILS if payment_method in REFUND_FAILING_CARDS else "sim_ch"
        return ProviderResult(
            _provider_id(prefix, idempotency_key),
            False,
            status=PaymentStatus.REQUIRES_CONFIRMATION,
        )

    async def confirm_charge(
        self, provider_payment_id: str, *, idempotency_key: str, payment_method: str, fresh: bool
    ) -> ProviderResult:
        pid = provider_payment_id
        if payment_method in SUCCEEDING_CARDS | REFUND_FAILING_CARDS:
            return ProviderResult(pid, True)
        if payment_method in AUTHENTICATION_REQUIRED_CARDS:
            return ProviderResult(
                pid,
                False,
                status=PaymentStatus.REQUIRES_ACTION,
                client_secret=f"{pid}_secret_simulated",
            )
        return ProviderResult(pid, False, DECLINE_CODES.get(payment_method, "card_declined"))

    async def cancel_charge(self, provider_payment_id: str) -> ProviderResult:
        return ProviderResult(provider_payment_id, False, "canceled")

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult:
        if charge_id.startswith(f"{_REFUND_FAILS}_"):
            return ProviderResult(_provider_id("sim_re", idempotency_key), False, "refund_failed")
        return ProviderResult(_provider_id("sim_re", idempotency_key), True)
