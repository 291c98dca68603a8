"""The payment provider a process uses, chosen once from settings (like evently/search/factory.py).
The Stripe SDK is imported only when Stripe is chosen."""

from __future__ import annotations

from evently.payments.provider import PaymentProvider, SimulatedProvider
from evently.settings import Settings, get_settings


def get_provider(name: str, settings: Settings | None = None) -> PaymentProvider:
    """The provider called `name`; Stripe's reads its keys from `settings` (default: the
    process settings)."""
    if name == "simulated":
        return SimulatedProvider()
    if name == "stripe":
        from evently.payments.stripe import StripeProvider

        return StripeProvider.from_settings(settings or get_settings())
    raise ValueError(f"unknown payment provider {name!r}")
