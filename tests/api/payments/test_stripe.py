"""Stripe end to end on the real stack: the API and workers with EVENTLY_PAYMENT_PROVIDER=stripe,
localstripe as the Stripe API, its signed webhooks delivered over HTTP to the app.

Where localstripe falls short the test says so and uses Stripe's documented event JSON signed
with the webhook secret (tests/evently/payments/stripe_events.py): it never sends
``charge.refunded``, sends no ``payment_intent.payment_failed`` for a failed 3-D Secure
authentication, and ignores idempotency keys (the attempt record is tested against that).
Everything else is what localstripe really does.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import text

from evently.infra.embedded import free_port
from evently.infra.resources import Resources
from evently.invariants import check
from evently.payments.stripe import signature_header
from tests.api.bookings.test_endpoints import counters, is_problem, reserve_body, wait_status
from tests.api.payments.conftest import WEBHOOK_PATH, StripeStack
from tests.conftest import AppFactory
from tests.evently.payments import stripe_events as se
from tests.factories import Account, make_account, make_event
from workflows.booking.client import story

# stripe 16.1's httpx client posts bytes through data=, which httpx deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

THREE_D_SECURE = "4000002500003155"  # localstripe: requires_action until _authenticate
DECLINED = "4000000000000341"  # localstripe's only card declined when charged


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


async def held(
    stack: StripeStack, price: str = "25.00", quantity: int = 2, capacity: int = 4
) -> tuple[Account, uuid.UUID, str]:
    buyer = await make_account(stack.res)
    event = await make_event(stack.res, capacity=capacity, price=Decimal(price))
    r = await stack.client.post(
        "/api/v1/bookings/reserve", json=reserve_body(event.id, quantity), headers=buyer.headers
    )
    assert r.status_code == 201, r.text
    return buyer, event.id, r.json()["booking_id"]


async def confirm(stack: StripeStack, buyer: Account, booking_id: str, pm: str) -> httpx.Response:
    return await stack.client.post(
        "/api/v1/bookings/confirm",
        json={"booking_id": booking_id, "payment_method": pm},
        headers=buyer.headers,
    )


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


async def authenticate(http: httpx.AsyncClient, pid: str, secret: str, success: bool) -> None:
    """localstripe's stand-in for the buyer's browser finishing (or failing) 3-D Secure."""
    answer = await http.post(
        f"/v1/payment_intents/{pid}/_authenticate",
        data={"client_secret": secret, "success": str(success).lower()},
    )
    answer.raise_for_status()


async def until(predicate: Any, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def invariants_hold(res: Resources, event_id: uuid.UUID) -> None:
    async with res.engine.connect() as conn:
        assert await check(conn, event_id) == []


# ---- Done when ------------------------------------------------------------------------------


async def test_paid_through_stripe_then_cancelled_shows_the_intent_and_the_refund(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "25.00", 2)
    paid = await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "confirmed"
    [attempt] = await attempts(stripe_stack.res, booking_id)
    assert (attempt.attempt, attempt.status) == (1, "succeeded")
    pi = await intent(localstripe_http, attempt.provider_payment_id)
    assert (pi["status"], pi["amount"], pi["currency"]) == ("succeeded", 5000, "eur")
    assert pi["metadata"]["booking_id"] == booking_id

    cancelled = await stripe_stack.client.delete(
        f"/api/v1/bookings/{booking_id}", headers=buyer.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["refunded"] is True
    refunds = (
        await localstripe_http.get("/v1/refunds", params={"payment_intent": pi["id"]})
    ).json()["data"]
    assert [(r["status"], r["amount"], r["currency"]) for r in refunds] == [
        ("succeeded", 5000, "eur")
    ]
    [refund] = await rows(
        stripe_stack.res,
        "SELECT provider_payment_id, amount FROM payments WHERE booking_id = :b "
        "AND kind = 'refund'",
        b=booking_id,
    )
    assert (refund.provider_payment_id, refund.amount) == (refunds[0]["id"], Decimal("50.00"))
    await wait_status(stripe_stack.res, booking_id, "cancelled")
    assert await counters(stripe_stack.res, event_id) == (4, 0, 0)
    # localstripe's payment_intent.succeeded for this charge arrives about a second later: it
    # changes nothing (the charge is recorded and refunded). Wait until it was handled (a
    # bounded poll), then look again at the provider and at our payments

    async def late_webhook_handled() -> bool:
        return bool(
            await rows(
                stripe_stack.res,
                "SELECT 1 FROM processed_webhook_events WHERE booking_id = :b "
                "AND event_type = 'payment_intent.succeeded'",
                b=booking_id,
            )
        )

    await until(late_webhook_handled)
    after = (await localstripe_http.get("/v1/refunds", params={"payment_intent": pi["id"]})).json()[
        "data"
    ]
    assert [r["id"] for r in after] == [refunds[0]["id"]]
    payments = await rows(
        stripe_stack.res,
        "SELECT kind, status FROM payments WHERE booking_id = :b ORDER BY created_at",
        b=booking_id,
    )
    assert [(p.kind, p.status) for p in payments] == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]
    await wait_status(stripe_stack.res, booking_id, "cancelled")
    await invariants_hold(stripe_stack.res, event_id)


@contextlib.asynccontextmanager
async def webhooks_to_inbox(
    stack: StripeStack, http: httpx.AsyncClient
) -> AsyncIterator[asyncio.Queue[tuple[bytes, str]]]:
    """localstripe's webhooks go to an inbox instead of the app (for the test to deliver them
    itself, as often as it likes), then back to the app."""
    inbox: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()

    async def receive(request: web.Request) -> web.Response:
        await inbox.put((await request.read(), request.headers.get("Stripe-Signature", "")))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    events = ["payment_intent.succeeded", "payment_intent.payment_failed"]

    async def route(url: str) -> None:
        answer = await http.post(
            f"/_config/webhooks/{stack.hook_id}",
            data={"url": url, "secret": stack.webhook_secret, "events[]": events},
        )
        answer.raise_for_status()

    await route(f"http://127.0.0.1:{port}/hook")
    try:
        yield inbox
    finally:
        await route(f"{stack.url}{WEBHOOK_PATH}")
        await runner.cleanup()


async def next_event_for(
    inbox: asyncio.Queue[tuple[bytes, str]], pid: str
) -> tuple[bytes, str, dict[str, Any]]:
    while True:  # other tests' PaymentIntents may arrive too
        body, header = await asyncio.wait_for(inbox.get(), timeout=15)
        event: dict[str, Any] = json.loads(body)
        if event["data"]["object"]["id"] == pid:
            return body, header, event


async def test_a_signed_stripe_webhook_delivered_three_times_confirms_a_held_booking_once(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "15.00", 1)
    async with webhooks_to_inbox(stripe_stack, localstripe_http) as inbox:
        pending = await confirm(
            stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
        )
        assert pending.status_code == 202, pending.text
        [attempt] = await attempts(stripe_stack.res, booking_id)
        pid = attempt.provider_payment_id
        await authenticate(localstripe_http, pid, pending.json()["client_secret"], True)
        body, header, event = await next_event_for(inbox, pid)
    assert event["type"] == "payment_intent.succeeded"
    headers = {"Stripe-Signature": header, "content-type": "application/json"}
    deliveries = await asyncio.gather(
        *(stripe_stack.client.post(WEBHOOK_PATH, content=body, headers=headers) for _ in range(3))
    )
    assert [d.status_code for d in deliveries] == [200, 200, 200], [d.text for d in deliveries]
    assert {d.json()["id"] for d in deliveries} == {event["id"]}
    await wait_status(stripe_stack.res, booking_id, "confirmed")
    # and once more, after it settled: acknowledged, nothing done
    late = await stripe_stack.client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert late.json()["status"] == "duplicate"

    charges = await rows(
        stripe_stack.res,
        "SELECT provider_payment_id, amount FROM payments WHERE booking_id = :b "
        "AND kind = 'charge'",
        b=booking_id,
    )
    assert [(c.provider_payment_id, c.amount) for c in charges] == [(pid, Decimal("15.00"))]
    seen = await rows(
        stripe_stack.res,
        "SELECT booking_id FROM processed_webhook_events WHERE provider_event_id = :e",
        e=event["id"],
    )
    assert [str(s.booking_id) for s in seen] == [booking_id]
    assert await counters(stripe_stack.res, event_id) == (3, 0, 1)
    # the workflow recorded the payment once, and confirmed once
    told = await story(stripe_stack.temporal, uuid.UUID(booking_id))
    assert told.state is not None
    assert told.state.status == "confirmed"
    assert sum(f"provider payment {pid}" in line for line in told.state.history) == 1
    await invariants_hold(stripe_stack.res, event_id)


async def test_requires_action_leaves_the_hold_running_and_a_later_success_confirms_it(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "40.00", 1)
    pending = await confirm(
        stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
    )
    assert pending.status_code == 202, pending.text
    body = pending.json()
    assert body["status"] == "requires_action"
    assert body["booking_id"] == booking_id
    [attempt] = await attempts(stripe_stack.res, booking_id)
    assert attempt.status == "requires_action"
    assert body["client_secret"].startswith(f"{attempt.provider_payment_id}_secret_")
    # the hold keeps running while the buyer authenticates
    await asyncio.sleep(1.0)
    got = await stripe_stack.client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert got.json()["status"] == "held"
    assert await counters(stripe_stack.res, event_id) == (3, 1, 0)

    # the buyer's browser finishes 3-D Secure; localstripe sends payment_intent.succeeded to
    # the app over HTTP, signed with the endpoint's secret
    await authenticate(localstripe_http, attempt.provider_payment_id, body["client_secret"], True)
    await wait_status(stripe_stack.res, booking_id, "confirmed")
    [attempt] = await attempts(stripe_stack.res, booking_id)
    assert attempt.status == "succeeded"
    [charge] = await rows(
        stripe_stack.res,
        "SELECT provider_payment_id FROM payments WHERE booking_id = :b AND kind = 'charge'",
        b=booking_id,
    )
    assert charge.provider_payment_id == attempt.provider_payment_id
    # the buyer's client, told 202 before, may ask again: confirmed, nothing charged
    again = await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    assert (again.status_code, again.json()["status"]) == (200, "confirmed")
    assert len(await attempts(stripe_stack.res, booking_id)) == 1
    assert await counters(stripe_stack.res, event_id) == (3, 0, 1)
    await invariants_hold(stripe_stack.res, event_id)


# ---- the other payment paths ----------------------------------------------------------------


async def test_failed_authentication_keeps_the_hold_and_another_card_pays(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "10.00", 1)
    pending = await confirm(
        stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
    )
    assert pending.status_code == 202, pending.text
    [first] = await attempts(stripe_stack.res, booking_id)
    await authenticate(
        localstripe_http, first.provider_payment_id, pending.json()["client_secret"], False
    )
    # localstripe sends no webhook for a failed authentication (only for a failed charge):
    # Stripe's payment_intent.payment_failed, around localstripe's own PaymentIntent JSON
    failed = await intent(localstripe_http, first.provider_payment_id)
    assert failed["status"] == "requires_payment_method"
    body = se.event("payment_intent.payment_failed", failed)
    told = await stripe_stack.client.post(
        WEBHOOK_PATH, content=body, headers=signed(stripe_stack, body)
    )
    assert told.json()["status"] == "processed", told.text
    [first] = await attempts(stripe_stack.res, booking_id)
    assert first.failure_code == "payment_intent_authentication_failure"
    assert await counters(stripe_stack.res, event_id) == (3, 1, 0)  # still held

    paid = await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    assert paid.status_code == 200, paid.text
    second = (await attempts(stripe_stack.res, booking_id))[1]
    assert (second.attempt, second.status) == (2, "succeeded")
    await invariants_hold(stripe_stack.res, event_id)


async def test_a_declined_card_is_402_and_the_hold_stays(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "10.00", 1)
    declined = await confirm(
        stripe_stack, buyer, booking_id, await card(localstripe_http, DECLINED)
    )
    is_problem(declined, 402, "payment_declined")
    [attempt] = await attempts(stripe_stack.res, booking_id)
    assert (attempt.status, attempt.failure_code) == ("failed", "card_declined")
    assert attempt.provider_payment_id.startswith("pi_")  # our PaymentIntent, not the charge
    assert await counters(stripe_stack.res, event_id) == (3, 1, 0)
    unknown = await confirm(stripe_stack, buyer, booking_id, "pm_doesnotexist")
    is_problem(unknown, 402, "payment_declined")
    assert "invalid_payment_method" in unknown.json()["detail"]
    await invariants_hold(stripe_stack.res, event_id)


async def test_paying_again_cancels_an_abandoned_three_d_secure_attempt(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    """A buyer who gives up on 3-D Secure and pays with another card cannot later also
    complete the first PaymentIntent: it is cancelled before the second charge."""
    buyer, event_id, booking_id = await held(stripe_stack, "12.00", 1)
    pending = await confirm(
        stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
    )
    assert pending.status_code == 202
    paid = await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    assert paid.status_code == 200, paid.text
    first, second = await attempts(stripe_stack.res, booking_id)
    assert (first.status, first.failure_code) == ("failed", "canceled")
    assert second.status == "succeeded"
    assert (await intent(localstripe_http, first.provider_payment_id))["status"] == "canceled"
    await invariants_hold(stripe_stack.res, event_id)


async def test_a_buyer_who_finished_three_d_secure_is_never_charged_twice(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    """3-D Secure done at Stripe, its webhook not here yet, and the buyer's client pays again:
    the earlier PaymentIntent is found succeeded and counts; no second PaymentIntent."""
    buyer, event_id, booking_id = await held(stripe_stack, "30.00", 1)
    async with webhooks_to_inbox(stripe_stack, localstripe_http):  # the webhook is held back
        pending = await confirm(
            stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
        )
        [first] = await attempts(stripe_stack.res, booking_id)
        await authenticate(
            localstripe_http, first.provider_payment_id, pending.json()["client_secret"], True
        )
        paid = await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    assert paid.status_code == 200, paid.text
    [only] = await attempts(stripe_stack.res, booking_id)
    assert (only.attempt, only.status) == (1, "succeeded")
    [charge] = await rows(
        stripe_stack.res,
        "SELECT provider_payment_id FROM payments WHERE booking_id = :b AND kind = 'charge' "
        "AND status = 'succeeded'",
        b=booking_id,
    )
    assert charge.provider_payment_id == first.provider_payment_id
    await invariants_hold(stripe_stack.res, event_id)


async def test_a_payment_after_the_hold_ended_confirms_when_the_seats_are_free(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient, app_factory: AppFactory
) -> None:
    """The late-payment rule, through Stripe: 3-D Secure finished after the hold expired."""
    short = dataclasses.replace(
        stripe_stack.res,
        settings=stripe_stack.res.settings.model_copy(update={"hold_seconds": 2}),
    )
    app = app_factory(short, temporal=stripe_stack.temporal)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        buyer = await make_account(short)
        event = await make_event(short, capacity=2, price=Decimal("20.00"))
        r = await c.post(
            "/api/v1/bookings/reserve", json=reserve_body(event.id), headers=buyer.headers
        )
        booking_id = r.json()["booking_id"]
        pending = await c.post(
            "/api/v1/bookings/confirm",
            json={
                "booking_id": booking_id,
                "payment_method": await card(localstripe_http, THREE_D_SECURE),
            },
            headers=buyer.headers,
        )
    assert pending.status_code == 202, pending.text
    await wait_status(short, booking_id, "expired")
    [attempt] = await attempts(short, booking_id)
    await authenticate(
        localstripe_http, attempt.provider_payment_id, pending.json()["client_secret"], True
    )
    await wait_status(short, booking_id, "confirmed")
    assert await counters(short, event.id) == (1, 0, 1)
    await invariants_hold(short, event.id)


async def test_the_charge_activity_retried_charges_once(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    """localstripe ignores idempotency keys: the attempt record is what keeps a retried
    activity (same booking, same attempt) from creating and confirming a second PaymentIntent."""
    from activities.payments import PaymentActivities
    from workflows.booking.contract import ChargeInput

    _, _, booking_id = await held(stripe_stack, "9.00", 1)
    activities = PaymentActivities(stripe_stack.res)
    data = ChargeInput(
        booking_id=uuid.UUID(booking_id),
        attempt=1,
        payment_method=await card(localstripe_http),
        amount=Decimal("9.00"),
        currency="EUR",
    )
    first = await activities.charge_payment(data)
    again = await activities.charge_payment(data)
    assert first.succeeded
    assert again == first
    [attempt] = await attempts(stripe_stack.res, booking_id)
    listed = (await localstripe_http.get("/v1/payment_intents", params={"limit": "100"})).json()
    ours = [pi for pi in listed["data"] if pi["metadata"].get("booking_id") == booking_id]
    assert [pi["id"] for pi in ours] == [attempt.provider_payment_id]


# ---- the webhook endpoint -----------------------------------------------------------------


def signed(stack: StripeStack, body: bytes, *, t: int | None = None) -> dict[str, str]:
    return {
        "Stripe-Signature": signature_header(body, stack.webhook_secret, timestamp=t),
        "content-type": "application/json",
    }


async def test_charge_refunded_is_acknowledged_once_and_changes_nothing(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    """localstripe never sends charge.refunded: Stripe's documented event, signed."""
    buyer, event_id, booking_id = await held(stripe_stack, "25.00", 1)
    await confirm(stripe_stack, buyer, booking_id, await card(localstripe_http))
    await stripe_stack.client.delete(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    [attempt] = await attempts(stripe_stack.res, booking_id)
    body = se.event("charge.refunded", se.refunded_charge(attempt.provider_payment_id))
    first = await stripe_stack.client.post(
        WEBHOOK_PATH, content=body, headers=signed(stripe_stack, body)
    )
    assert first.json()["status"] == "processed", first.text
    again = await stripe_stack.client.post(
        WEBHOOK_PATH, content=body, headers=signed(stripe_stack, body)
    )
    assert again.json()["status"] == "duplicate"
    await wait_status(stripe_stack.res, booking_id, "cancelled")
    refunds = await rows(
        stripe_stack.res,
        "SELECT 1 FROM payments WHERE booking_id = :b AND kind = 'refund'",
        b=booking_id,
    )
    assert len(refunds) == 1
    await invariants_hold(stripe_stack.res, event_id)


async def test_events_evently_did_not_cause_are_acknowledged_and_ignored(
    stripe_stack: StripeStack,
) -> None:
    foreign = se.event("payment_intent.succeeded", se.payment_intent("succeeded"))
    r = await stripe_stack.client.post(
        WEBHOOK_PATH, content=foreign, headers=signed(stripe_stack, foreign)
    )
    assert (r.status_code, r.json()["status"]) == (200, "ignored")
    other = se.event("customer.created", {"id": "cus_1", "object": "customer"})
    r = await stripe_stack.client.post(
        WEBHOOK_PATH, content=other, headers=signed(stripe_stack, other)
    )
    assert (r.status_code, r.json()["status"]) == (200, "ignored")


async def test_bad_stripe_webhooks_are_refused_and_change_nothing(
    stripe_stack: StripeStack, localstripe_http: httpx.AsyncClient
) -> None:
    buyer, event_id, booking_id = await held(stripe_stack, "15.00", 1)
    pending = await confirm(
        stripe_stack, buyer, booking_id, await card(localstripe_http, THREE_D_SECURE)
    )
    assert pending.status_code == 202
    [attempt] = await attempts(stripe_stack.res, booking_id)
    pid = attempt.provider_payment_id
    good = se.event(
        "payment_intent.succeeded", se.payment_intent("succeeded", intent_id=pid, amount=1500)
    )
    url, client = WEBHOOK_PATH, stripe_stack.client
    is_problem(await client.post(url, content=good), 401, "invalid_signature")
    wrong = {"Stripe-Signature": signature_header(good, "whsec_not_ours")}
    is_problem(await client.post(url, content=good, headers=wrong), 401, "invalid_signature")
    stale = signed(stripe_stack, good, t=int(time.time()) - 301)
    is_problem(await client.post(url, content=good, headers=stale), 401, "signature_expired")
    tampered = good.replace(b'"amount": 1500', b'"amount": 1')
    is_problem(
        await client.post(url, content=tampered, headers=signed(stripe_stack, good)),
        401,
        "invalid_signature",
    )
    for body, status, code in (
        (b'{"id": "evt_1", "type": ', 400, "malformed_json"),
        (b"[1, 2, 3]", 400, "malformed_json"),
        (b"\xff\xfe", 401, "invalid_signature"),
        (
            se.event(
                "payment_intent.succeeded",
                se.payment_intent("succeeded", intent_id=pid, amount=1499),
            ),
            422,
            "amount_mismatch",
        ),
        (se.event("payment_intent.succeeded", {"object": "payment_intent"}), 422, None),
    ):
        is_problem(
            await client.post(url, content=body, headers=signed(stripe_stack, body)), status, code
        )
    big = b"{" + b" " * 70_000 + b"}"
    is_problem(await client.post(url, content=big, headers=signed(stripe_stack, big)), 413)
    assert await counters(stripe_stack.res, event_id) == (3, 1, 0)
    got = await client.get(f"/api/v1/bookings/{booking_id}", headers=buyer.headers)
    assert got.json()["status"] == "held"


async def test_each_webhook_is_off_where_its_provider_is_not_used(
    stripe_stack: StripeStack, client: httpx.AsyncClient
) -> None:
    body = se.event("payment_intent.succeeded", se.payment_intent("succeeded"))
    # the session's app runs the simulated provider and has no Stripe webhook secret
    is_problem(
        await client.post(WEBHOOK_PATH, content=body, headers=signed(stripe_stack, body)),
        404,
        "webhook_disabled",
    )
    # with Stripe, the generic webhook cannot confirm anything
    is_problem(
        await stripe_stack.client.post("/api/v1/payments/webhook", content=b"{}"),
        404,
        "webhook_disabled",
    )
