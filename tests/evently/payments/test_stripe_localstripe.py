"""The Stripe provider against localstripe (a local Stripe API server), no mocks.

What localstripe 1.15.10 does, measured:
- emulates: PaymentMethods from card numbers (and the ``pm_card_visa`` shortcut only; other
  ``pm_card_*`` ids answer 404), PaymentIntents created with ``confirm=True`` → ``succeeded``,
  refunds, the listings ``/v1/payment_intents`` and ``/v1/refunds``, signed webhooks
  (``payment_intent.succeeded`` / ``payment_intent.payment_failed``) to an URL registered at
  ``POST /_config/webhooks/<id>``;
- 3-D Secure: cards 4000002500003155, 4000002760003184, 4000000000003220 (and three more)
  answer ``requires_action`` with a client_secret; its own test endpoint
  ``POST /v1/payment_intents/<id>/_authenticate`` plays the buyer's browser (success or not);
- declines only at charge time for 4000000000000341 (Stripe's "attaches, then charges fail"
  card): HTTP 402 ``card_declined`` — but its error names the charge, not the PaymentIntent;
  4000000000000002 (Stripe's generic decline) *succeeds* there (localstripe declines it only
  when attaching to a customer);
- does NOT honour idempotency keys (pinned below), and never sends ``charge.refunded``.
The shapes it cannot produce are tested in test_stripe_mapping.py from Stripe's documented JSON.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from aiohttp import web

from evently.enums import PaymentStatus
from evently.infra.embedded import free_port
from evently.payments.stripe import StripeProvider, StripeSignatureError, construct_event

# stripe 16.1's httpx client posts bytes through data=, which httpx deprecates
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


async def card(provider: StripeProvider, number: str) -> str:
    pm = await provider.client.v1.payment_methods.create_async(
        {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return pm.id


def key() -> str:
    return f"{uuid.uuid4()}-charge-1"


async def listed(http: httpx.AsyncClient, path: str, **params: str) -> list[dict[str, Any]]:
    answer = await http.get(path, params={"limit": "100", **params})
    answer.raise_for_status()
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


async def test_charge_succeeds_and_is_listed(
    stripe_provider: StripeProvider, localstripe_http: httpx.AsyncClient
) -> None:
    booking = str(uuid.uuid4())
    result = await stripe_provider.charge(
        idempotency_key=f"{booking}-charge-1",
        amount=Decimal("12.50"),
        currency="EUR",
        payment_method=await card(stripe_provider, "4242424242424242"),
        metadata={"booking_id": booking, "attempt": "1"},
    )
    assert result.status is PaymentStatus.SUCCEEDED
    assert result.succeeded
    assert result.provider_payment_id.startswith("pi_")
    [intent] = [
        pi
        for pi in await listed(localstripe_http, "/v1/payment_intents")
        if pi["id"] == result.provider_payment_id
    ]
    assert intent["status"] == "succeeded"
    assert (intent["amount"], intent["currency"]) == (1250, "eur")
    assert intent["metadata"] == {
        "booking_id": booking,
        "attempt": "1",
        "evently_idempotency_key": f"{booking}-charge-1",
    }


async def test_retrieve_reads_a_recorded_intent(stripe_provider: StripeProvider) -> None:
    charged = await stripe_provider.charge(
        idempotency_key=key(), amount=Decimal("3"), currency="usd", payment_method="pm_card_visa"
    )
    again = await stripe_provider.retrieve(charged.provider_payment_id)
    assert again == charged


async def test_declined_card_fails_with_its_code(stripe_provider: StripeProvider) -> None:
    """4000000000000341 is the card localstripe declines when charged (402 card_declined)."""
    result = await stripe_provider.charge(
        idempotency_key=key(),
        amount=Decimal("20"),
        currency="eur",
        payment_method=await card(stripe_provider, "4000000000000341"),
    )
    assert result.status is PaymentStatus.FAILED
    assert result.failure_code == "card_declined"
    # localstripe's 402 names the charge only; real Stripe's carries the PaymentIntent
    # (that mapping: test_stripe_mapping.py)
    assert result.provider_payment_id.startswith(("ch_", "pi_"))


async def test_unknown_payment_method_is_the_buyers_failure(
    stripe_provider: StripeProvider,
) -> None:
    result = await stripe_provider.charge(
        idempotency_key=key(), amount=Decimal("20"), currency="eur", payment_method="pm_nope"
    )
    assert (result.status, result.failure_code) == (PaymentStatus.FAILED, "invalid_payment_method")


@pytest.mark.parametrize(("authenticated", "final"), [(True, "succeeded"), (False, "failed")])
async def test_three_d_secure_requires_action_then_settles(
    stripe_provider: StripeProvider,
    localstripe_http: httpx.AsyncClient,
    authenticated: bool,
    final: str,
) -> None:
    result = await stripe_provider.charge(
        idempotency_key=key(),
        amount=Decimal("45.00"),
        currency="eur",
        payment_method=await card(stripe_provider, "4000002500003155"),
    )
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert not result.succeeded
    assert result.client_secret
    assert result.client_secret.startswith(f"{result.provider_payment_id}_secret_")
    # the buyer's browser completes (or fails) the challenge: localstripe's stand-in for it
    answer = await localstripe_http.post(
        f"/v1/payment_intents/{result.provider_payment_id}/_authenticate",
        data={"client_secret": result.client_secret, "success": str(authenticated).lower()},
    )
    answer.raise_for_status()
    later = await stripe_provider.retrieve(result.provider_payment_id)
    assert later.status == final
    if not authenticated:
        assert later.failure_code == "payment_intent_authentication_failure"


async def test_refund_succeeds_and_is_listed(
    stripe_provider: StripeProvider, localstripe_http: httpx.AsyncClient
) -> None:
    booking = str(uuid.uuid4())
    charged = await stripe_provider.charge(
        idempotency_key=f"{booking}-charge-1",
        amount=Decimal("30.00"),
        currency="eur",
        payment_method=await card(stripe_provider, "4242424242424242"),
    )
    refunded = await stripe_provider.refund(
        idempotency_key=f"{booking}-refund",
        charge_id=charged.provider_payment_id,
        amount=Decimal("30.00"),
        currency="eur",
    )
    assert refunded.status is PaymentStatus.SUCCEEDED
    assert refunded.provider_payment_id.startswith("re_")
    [row] = [
        r
        for r in await listed(localstripe_http, "/v1/refunds")
        if r["id"] == refunded.provider_payment_id
    ]
    assert row["status"] == "succeeded"
    assert (row["amount"], row["currency"]) == (3000, "eur")
    assert row["payment_intent"] == charged.provider_payment_id


async def test_a_retried_refund_finds_the_first_one(
    stripe_provider: StripeProvider, localstripe_http: httpx.AsyncClient
) -> None:
    """localstripe ignores idempotency keys; the provider's own lookup (by the key kept in the
    refund's metadata) still refunds once."""
    charged = await stripe_provider.charge(
        idempotency_key=key(), amount=Decimal("10"), currency="eur", payment_method="pm_card_visa"
    )
    first, second = [
        await stripe_provider.refund(
            idempotency_key="same-refund-key",
            charge_id=charged.provider_payment_id,
            amount=Decimal("4"),
            currency="eur",
        )
        for _ in range(2)
    ]
    assert first == second
    rows = await listed(localstripe_http, "/v1/refunds", payment_intent=charged.provider_payment_id)
    assert [r["id"] for r in rows] == [first.provider_payment_id]


async def test_localstripe_ignores_idempotency_keys(stripe_provider: StripeProvider) -> None:
    """Pins the emulator's gap (real Stripe returns the first PaymentIntent): the same key twice
    makes two PaymentIntents, so the booking's own record of attempts must prevent a second
    charge (a retried activity confirms the PaymentIntent it recorded: confirm_charge with
    fresh=False; tests/api/payments/test_stripe.py runs the activity twice)."""
    same = key()
    a, b = [
        await stripe_provider.charge(
            idempotency_key=same, amount=Decimal("1"), currency="eur", payment_method="pm_card_visa"
        )
        for _ in range(2)
    ]
    assert a.provider_payment_id != b.provider_payment_id


# ---- the two steps of a charge -----------------------------------------------------------


async def test_prepare_moves_no_money_and_confirm_does(
    stripe_provider: StripeProvider, localstripe_http: httpx.AsyncClient
) -> None:
    k = key()
    prepared = await stripe_provider.prepare_charge(
        idempotency_key=k,
        amount=Decimal("8.00"),
        currency="eur",
        payment_method=await card(stripe_provider, "4242424242424242"),
        metadata={"booking_id": "b-2"},
    )
    assert prepared.status is PaymentStatus.REQUIRES_CONFIRMATION
    pid = prepared.provider_payment_id
    listed = (await localstripe_http.get(f"/v1/payment_intents/{pid}")).json()
    assert (listed["status"], listed["latest_charge"]) == ("requires_confirmation", None)
    confirmed = await stripe_provider.confirm_charge(
        pid, idempotency_key=k, payment_method="unused", fresh=True
    )
    assert (confirmed.status, confirmed.provider_payment_id) == (PaymentStatus.SUCCEEDED, pid)
    # a retried activity confirms the same recorded PaymentIntent: it reads it, charges nothing
    again = await stripe_provider.confirm_charge(
        pid, idempotency_key=k, payment_method="unused", fresh=False
    )
    assert again == confirmed
    # even told it is fresh (a concurrent confirm won): the state is read, not an error
    raced = await stripe_provider.confirm_charge(
        pid, idempotency_key=k, payment_method="unused", fresh=True
    )
    assert raced.status is PaymentStatus.SUCCEEDED


async def test_a_declined_confirmation_names_the_payment_intent(
    stripe_provider: StripeProvider,
) -> None:
    prepared = await stripe_provider.prepare_charge(
        idempotency_key=key(),
        amount=Decimal("20"),
        currency="eur",
        payment_method=await card(stripe_provider, "4000000000000341"),
    )
    declined = await stripe_provider.confirm_charge(
        prepared.provider_payment_id, idempotency_key=key(), payment_method="", fresh=True
    )
    assert (declined.status, declined.failure_code) == (PaymentStatus.FAILED, "card_declined")
    assert declined.provider_payment_id == prepared.provider_payment_id


async def test_cancel_stops_an_unfinished_intent_but_not_a_finished_one(
    stripe_provider: StripeProvider, localstripe_http: httpx.AsyncClient
) -> None:
    waiting, finished = [
        await stripe_provider.charge(
            idempotency_key=key(),
            amount=Decimal("5"),
            currency="eur",
            payment_method=await card(stripe_provider, "4000002500003155"),
        )
        for _ in range(2)
    ]
    assert waiting.status is finished.status is PaymentStatus.REQUIRES_ACTION
    answer = await localstripe_http.post(
        f"/v1/payment_intents/{finished.provider_payment_id}/_authenticate",
        data={"client_secret": finished.client_secret, "success": "true"},
    )
    answer.raise_for_status()
    cancelled = await stripe_provider.cancel_charge(waiting.provider_payment_id)
    assert (cancelled.status, cancelled.failure_code) == (PaymentStatus.FAILED, "canceled")
    kept = await stripe_provider.cancel_charge(finished.provider_payment_id)
    assert kept.status is PaymentStatus.SUCCEEDED  # the buyer won the race: it stands


# ---- webhooks localstripe sends --------------------------------------------------------


@pytest.fixture
async def webhook_inbox() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[bytes, str]]]]:
    """An HTTP endpoint that keeps every (raw body, Stripe-Signature) it receives."""
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
    try:
        yield f"http://127.0.0.1:{port}/hook", inbox
    finally:
        await runner.cleanup()


async def test_webhook_sent_by_localstripe_verifies(
    stripe_provider: StripeProvider,
    localstripe_http: httpx.AsyncClient,
    webhook_inbox: tuple[str, asyncio.Queue[tuple[bytes, str]]],
) -> None:
    url, inbox = webhook_inbox
    secret = f"whsec_{uuid.uuid4().hex}"
    hook_id = uuid.uuid4().hex
    registered = await localstripe_http.post(
        f"/_config/webhooks/{hook_id}",
        data={"url": url, "secret": secret, "events[]": ["payment_intent.succeeded"]},
    )
    registered.raise_for_status()
    charged = await stripe_provider.charge(
        idempotency_key=key(), amount=Decimal("7"), currency="eur", payment_method="pm_card_visa"
    )
    # localstripe delivers about a second later; other tests' intents may arrive too
    while True:
        body, header = await asyncio.wait_for(inbox.get(), timeout=15)
        event = construct_event(body, header, secret)
        if event["data"]["object"]["id"] == charged.provider_payment_id:
            break
    assert event["type"] == "payment_intent.succeeded"
    assert json.loads(body)["data"]["object"]["status"] == "succeeded"
    with pytest.raises(StripeSignatureError):
        construct_event(body, header, "whsec_wrong")
    # stop deliveries to an inbox that is about to close
    await localstripe_http.post(
        f"/_config/webhooks/{hook_id}",
        data={"url": url, "secret": secret, "events[]": ["evently.never"]},
    )


async def test_a_bad_api_key_raises_instead_of_declining(localstripe_url: str) -> None:
    """A configuration error propagates (the activity retries, ops get alerted); it is never
    mapped to a decline that would tell a buyer their card failed."""
    provider = StripeProvider("not-a-key", api_base=localstripe_url, max_network_retries=0)
    try:
        with pytest.raises(stripe.AuthenticationError):
            await provider.charge(
                idempotency_key=key(),
                amount=Decimal("1"),
                currency="eur",
                payment_method="pm_card_visa",
            )
    finally:
        await provider.aclose()
