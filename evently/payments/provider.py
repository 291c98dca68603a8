"""Payment providers. The built-in `simulated` one follows Stripe's test conventions:
``pm_card_visa`` (and the other ``pm_card_*`` success cards) succeed,
``pm_card_chargeDeclined*`` are declined. Provider ids derive from the idempotency key, so
a retried call returns the same charge — exactly what a real provider does with its
Idempotency-Key header."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

SUCCEEDING_CARDS = frozenset(
    {"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_visa_debit"}
)
DECLINE_CODES = {
    "pm_card_chargeDeclined": "card_declined",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "pm_card_chargeDeclinedExpiredCard": "expired_card",
}


@dataclass(frozen=True)
class ProviderResult:
    provider_payment_id: str
    succeeded: bool
    failure_code: str | None = None


class PaymentProvider(Protocol):
    name: str

    async def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, payment_method: str
    ) -> ProviderResult: ...

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult: ...


def _provider_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class SimulatedProvider:
    name = "simulated"

    async def charge(
        self, *, idempotency_key: str, amount: Decimal, currency: str, payment_method: str
    ) -> ProviderResult:
        pid = _provider_id("sim_ch", idempotency_key)
        if payment_method in SUCCEEDING_CARDS:
            return ProviderResult(pid, True)
        return ProviderResult(pid, False, DECLINE_CODES.get(payment_method, "card_declined"))

    async def refund(
        self, *, idempotency_key: str, charge_id: str, amount: Decimal, currency: str
    ) -> ProviderResult:
        return ProviderResult(_provider_id("sim_re", idempotency_key), True)


def get_provider(name: str) -> PaymentProvider:
    if name == "simulated":
        return SimulatedProvider()
    raise ValueError(f"unknown payment provider {name!r}")
