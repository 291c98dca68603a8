"""Payment providers. The built-in `simulated` one follows Stripe's test conventions:
``pm_card_visa`` (and the other ``pm_card_*`` success cards) succeed,
``pm_card_chargeDeclined*`` are declined. Provider ids derive from the idempotency key, so
a retried call returns the same charge — exactly what a real provider does with its
Idempotency-Key header."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from evently.settings import Settings

SUCCEEDING_CARDS = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
)
DECLINE_CODES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}


class PaymentStatus(StrEnum):
    """Where a charge or refund stands at the provider once our call returns."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # the buyer must act (3-D Secure): hand them client_secret; the outcome arrives by webhook
    REQUIRES_ACTION = "requires_action"
    # accepted, outcome pending (a refund in flight, an asynchronous payment method): webhook
    PROCESSING = "processing"


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


class PaymentProvider(Protocol):
    name: str

    async def charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult: ...

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult: ...


def _provider_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class SimulatedProvider:
    name = "simulated"

    async def charge(
        self,
        *,
        idempotency_key: str,
        amount: Decimal,
        currency: str,
        payment_method: str,
        metadata: Mapping[str, str] | None = None,
    ) -> ProviderResult:
        pid = _provider_id("sim_ch", idempotency_key)
        if payment_method in SUCCEEDING_CARDS:
            return ProviderResult(pid, True)
        return ProviderResult(pid, False, DECLINE_CODES.get(payment_method, "card_declined"))

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult:
        return ProviderResult(_provider_id("sim_re", idempotency_key), True)


def get_provider(name: str, settings: Settings | None = None) -> PaymentProvider:
    """The provider called `name`; Stripe's reads its keys from `settings` (default: the
    process settings). The Stripe SDK is imported only when Stripe is chosen."""
    if name == "simulated":
        return SimulatedProvider()
    if name == "stripe":
        from evently.payments.stripe import StripeProvider
        from evently.settings import get_settings

        return StripeProvider.from_settings(settings or get_settings())
    raise ValueError(f"unknown payment provider {name!r}")
