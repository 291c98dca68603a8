"""Helpers of the Stripe tests (localstripe): a card as Stripe.js makes it, the payment
attempts and intents, a bounded poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import text

from evently.infra.resources import Resources


async def card(http: httpx.AsyncClient, number: str = "4242424242424242") -> str:
    """A PaymentMethod at localstripe, as Stripe.js would create it in the buyer's browser."""
    answer = await http.post(
        "/v1/payment_methods",
        data={
            "type": "card",
            "card[number]": number,
            "card[exp_month]": "12",
            "card[exp_year]": "2034",
            "card[cvc]": "123",
        },
    )
    answer.raise_for_status()
    pm: str = answer.json()["id"]
    return pm


async def rows(res: Resources, sql: str, **params: object) -> list[Any]:
    async with res.engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def attempts(res: Resources, booking_id: str) -> list[Any]:
    return await rows(
        res,
        "SELECT attempt, provider_payment_id, status, failure_code FROM payment_attempts "
        "WHERE booking_id = :b ORDER BY attempt",
        b=booking_id,
    )


async def intent(http: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    answer = await http.get(f"/v1/payment_intents/{pid}")
    answer.raise_for_status()
    found: dict[str, Any] = answer.json()
    return found


async def until(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
