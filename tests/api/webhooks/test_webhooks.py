"""Organizer webhooks end to end: real API, real workers (the webhooks queue: the outbox relay
and the delivery workflows), a real HTTP receiver that is down, fails, times out and recovers,
or answers 410. Retries are fast here (tests/conftest.py: 0.2 s doubling to 1 s, 1 s attempt
timeout); the production schedule is tested on the time-skipping server
(tests/workflows/webhooks/)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from evently.infra.resources import Resources
from tests.support.factories import Account, make_account, make_accounts
from tests.support.histories import record
from tests.support.organizations import Org, confirmed_booking, make_org, org_event, org_venue
from tests.support.problems import assert_problem
from tests.support.webhook_receiver import Receiver
from workflows.webhooks.contract import RELAY_WORKFLOW_ID

pytestmark = pytest.mark.usefixtures("running_workers")

ALL_TYPES = [
    "booking.confirmed",
    "booking.cancelled",
    "booking.refunded",
    "event.sold_out",
    "event.cancelled",
    "waitlist.offered",
]


@pytest.fixture(scope="module")
async def admin(resources: Resources) -> Account:
    return await make_account(resources, "admin")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


async def subscribe(
    client: httpx.AsyncClient, org: Org, url: str, types: list[str] = ALL_TYPES
) -> dict[str, Any]:
    r = await client.post(
        org.url("/webhooks"),
        json={"url": url, "event_types": types, "description": "test receiver"},
        headers=org.owner.headers,
    )
    assert r.status_code == 201, r.text
    body = dict(r.json())
    assert body["secret"].startswith("whsec_")
    assert body["status"] == "active"
    return body


async def deliveries(
    client: httpx.AsyncClient, org: Org, hook_id: str, **params: str
) -> list[dict[str, Any]]:
    r = await client.get(
        org.url(f"/webhooks/{hook_id}/deliveries"),
        params={"limit": "100", **params},
        headers=org.owner.headers,
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


async def wait_for(predicate: Any, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_every_event_is_delivered_once_the_receiver_is_back(
    client: httpx.AsyncClient,
    resources: Resources,
    admin: Account,
    receiver: Receiver,
    temporal_client: Client,
) -> None:
    org = await make_org(client, resources, admin)
    hook = await subscribe(client, org, receiver.url)
    receiver.secret = hook["secret"]
    await receiver.stop()  # down: connections refused while the sale goes on

    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=2)
    fan, waiting = await make_accounts(resources, 2)
    booking = await confirmed_booking(client, fan, event["id"], quantity=2)  # sold out
    joined = await client.post(
        "/api/v1/waitlist/join",
        json={"event_id": event["id"], "quantity": 1},
        headers=waiting.headers,
    )
    assert joined.status_code == 201, joined.text
    refund = await client.post(  # refunded, cancelled; the seats go to the waitlist
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"),
        headers=org.members["finance"].headers,
    )
    assert refund.status_code == 200, refund.text

    async def offered() -> bool:
        types = {d["event_type"] for d in await deliveries(client, org, hook["id"])}
        return "waitlist.offered" in types

    await wait_for(offered, what="the waitlist offer")
    cancelled = await client.delete(org.url(f"/events/{event['id']}"), headers=org.owner.headers)
    assert cancelled.status_code == 202

    async def six_failing() -> bool:
        found = await deliveries(client, org, hook["id"])
        return len(found) == 6 and all(d["attempts"] >= 2 for d in found)

    await wait_for(six_failing, what="every message to fail at least twice")
    log = await deliveries(client, org, hook["id"])
    assert {d["event_type"] for d in log} == set(ALL_TYPES)
    assert all(d["status"] == "delivering" and d["next_attempt_at"] for d in log)
    assert all("ConnectError" in (d["last_error"] or "") for d in log), log

    # back: each message is first answered 500, then too late (processed, but the sender has
    # timed out: it will send it again), then 200
    receiver.behaviour = lambda msg_id, n: {1: 500, 2: "slow"}.get(n, 200)
    await receiver.start()

    async def all_delivered() -> bool:
        found = await deliveries(client, org, hook["id"])
        return len(found) == 6 and all(d["status"] == "delivered" for d in found)

    await wait_for(all_delivered, timeout=90, what="every message delivered")
    log = await deliveries(client, org, hook["id"])
    ids = {d["message_id"] for d in log}
    assert all(i.startswith("msg_") for i in ids)
    # the receiver processed each message exactly once, under its stable id...
    assert set(receiver.processed) == ids
    assert len(receiver.processed_order) == 6
    assert receiver.bad_signatures == 0
    # ...though it saw each one again after answering too late (its dedup caught those)
    assert set(receiver.duplicates) == ids
    # once answered 2xx in time, a message is never sent again
    assert receiver.answered_2xx() == dict.fromkeys(ids, 1)
    assert all(receiver.last_arrival(i).answer == 200 for i in ids)
    assert {p["type"] for p in receiver.processed.values()} == set(ALL_TYPES)
    by_type = {p["type"]: p for p in receiver.processed.values()}
    confirmed = by_type["booking.confirmed"]
    assert confirmed["organization_id"] == org.id
    assert confirmed["data"]["booking_id"] == booking
    assert confirmed["data"]["amount"] == "50.00"
    assert confirmed["data"]["quantity"] == 2
    assert confirmed["data"]["buyer"]["email"] == fan.user.email
    assert by_type["booking.refunded"]["data"]["booking_id"] == booking
    assert by_type["waitlist.offered"]["data"]["seats"] == 1
    assert by_type["event.sold_out"]["data"]["event_id"] == event["id"]
    assert by_type["event.cancelled"]["data"]["event_id"] == event["id"]

    # the delivery log: every attempt with its status code or error
    one = log[0]
    detail = await client.get(
        org.url(f"/webhooks/{hook['id']}/deliveries/{one['id']}"), headers=org.owner.headers
    )
    assert detail.status_code == 200
    attempts = detail.json()["attempt_log"]
    assert [a["attempt"] for a in attempts] == list(range(1, len(attempts) + 1))
    assert attempts[-1]["status_code"] == 200
    assert attempts[-1]["next_attempt_at"] is None
    assert any(a["status_code"] == 500 for a in attempts)
    assert any("timed out" in (a["error"] or "") for a in attempts)
    assert all(a["next_attempt_at"] for a in attempts[:-1])
    # the log keeps the answer's status and headers, never its body (issue 28)
    assert attempts[-1]["response_headers"]["x-receiver"] == "evently-tests"
    assert "internal-answer" not in detail.text
    assert any(a["error"] == "HTTP 500" for a in attempts)
    assert detail.json()["data"] == receiver.processed[one["message_id"]]["data"]
    await record(temporal_client, RELAY_WORKFLOW_ID, "webhook-relay")  # a run in progress


async def test_a_410_disables_the_subscription(
    client: httpx.AsyncClient, resources: Resources, admin: Account, receiver: Receiver
) -> None:
    org = await make_org(client, resources, admin)
    hook = await subscribe(client, org, receiver.url, ["event.cancelled", "booking.confirmed"])
    receiver.secret = hook["secret"]
    receiver.behaviour = lambda msg_id, n: 410
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=5)
    buyer = (await make_accounts(resources, 1))[0]
    await confirmed_booking(client, buyer, event["id"])

    async def disabled() -> bool:
        r = await client.get(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers)
        return bool(r.json()["status"] == "disabled")

    await wait_for(disabled, what="the subscription disabled")
    got = (await client.get(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers)).json()
    assert got["disabled_reason"] == "the endpoint answered 410 Gone"
    assert got["disabled_at"]
    [delivery] = await deliveries(client, org, hook["id"])
    assert delivery["status"] == "failed"
    assert delivery["last_status_code"] == 410
    assert delivery["attempts"] == 1
    assert delivery["next_attempt_at"] is None
    audit = await client.get(
        org.url("/audit"), params={"action": "webhook.disabled"}, headers=org.owner.headers
    )
    [entry] = audit.json()["items"]
    assert entry["actor"] == "system:webhooks"
    assert entry["target_id"] == hook["id"]

    # disabled: nothing is written for it any more
    await client.delete(org.url(f"/events/{event['id']}"), headers=org.owner.headers)
    await asyncio.sleep(1)
    assert len(await deliveries(client, org, hook["id"])) == 1
    assert len(receiver.arrivals) == 1

    # its owner turns it back on: new messages are delivered again
    receiver.behaviour = lambda msg_id, n: 204
    again = await client.patch(
        org.url(f"/webhooks/{hook['id']}"), json={"enabled": True}, headers=org.owner.headers
    )
    assert again.status_code == 200
    assert again.json()["status"] == "active"
    other = await org_event(client, org, venue, publish=True, capacity=5)
    await confirmed_booking(client, buyer, other["id"])

    async def delivered() -> bool:
        found = await deliveries(client, org, hook["id"], status="delivered")
        return len(found) == 1

    await wait_for(delivered, what="the delivery after re-enabling")
    assert [a.answer for a in receiver.arrivals] == [410, 204]


async def test_an_owner_redelivers_a_message_on_demand(
    client: httpx.AsyncClient, resources: Resources, admin: Account, receiver: Receiver
) -> None:
    """Issue 30: a delivery (here one already delivered) sent again as a new delivery of the
    same message — same webhook-id, so the receiver sees a duplicate; its own attempts; once
    per Idempotency-Key; audited; owners only."""
    org = await make_org(client, resources, admin)
    hook = await subscribe(client, org, receiver.url, ["booking.confirmed"])
    receiver.secret = hook["secret"]
    event = await org_event(client, org, await org_venue(client, org), publish=True)
    (buyer,) = await make_accounts(resources, 1)
    await confirmed_booking(client, buyer, event["id"])

    async def delivered(n: int) -> bool:
        found = await deliveries(client, org, hook["id"], status="delivered")
        return len(found) == n

    await wait_for(lambda: delivered(1), what="the first delivery")
    [first] = await deliveries(client, org, hook["id"])
    assert first["redelivery_of"] is None
    path = org.url(f"/webhooks/{hook['id']}/deliveries/{first['id']}/redeliver")
    key = {"Idempotency-Key": uuid.uuid4().hex}
    r = await client.post(path, headers={**org.owner.headers, **key})
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["redelivery_of"] == first["id"]
    assert again["message_id"] == first["message_id"]
    assert again["status"] == "pending"
    same = await client.post(path, headers={**org.owner.headers, **key})  # a retried request
    assert same.status_code == 202
    assert same.json()["id"] == again["id"]
    refused = await client.post(path, headers=org.members["manager"].headers)
    assert refused.status_code == 403

    await wait_for(lambda: delivered(2), what="the redelivery")
    [copy] = [d for d in await deliveries(client, org, hook["id"]) if d["id"] == again["id"]]
    assert copy["attempts"] == 1
    assert receiver.duplicates[first["message_id"]] == 1  # the same message, once more
    assert len(receiver.processed) == 1
    audit = await client.get(
        org.url("/audit"), params={"action": "webhook.redelivered"}, headers=org.owner.headers
    )
    [entry] = audit.json()["items"]
    assert entry["details"]["delivery_id"] == first["id"]
    assert entry["details"]["redelivery_id"] == again["id"]


async def test_webhook_urls_and_bodies_are_checked(
    client: httpx.AsyncClient, resources: Resources, admin: Account
) -> None:
    org = await make_org(client, resources, admin, roles=("owner", "manager"))
    for url in ("ftp://example.com/x", "https://user:pw@example.com/x", "not a url at all"):
        r = await client.post(
            org.url("/webhooks"),
            json={"url": url, "event_types": ["event.cancelled"]},
            headers=org.owner.headers,
        )
        assert_problem(r, 422, "invalid_webhook_url")
    for body in (
        {"url": "https://example.com/x", "event_types": []},
        {"url": "https://example.com/x", "event_types": ["booking.exploded"]},
    ):
        r = await client.post(org.url("/webhooks"), json=body, headers=org.owner.headers)
        assert_problem(r, 422, "validation_error")
    hook = await subscribe(client, org, "https://example.com/hooks", ["event.cancelled"])
    assert (
        "secret"
        not in (
            await client.get(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers)
        ).json()
    )
    # only owners see or change webhooks
    manager = org.members["manager"].headers
    assert_problem(
        await client.get(org.url("/webhooks"), headers=manager), 403, "organization_role_required"
    )
    deleted = await client.delete(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers)
    assert deleted.status_code == 204
    assert_problem(
        await client.get(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers),
        404,
        "webhook_not_found",
    )


def test_production_refuses_plain_http_and_every_environment_private_destinations() -> None:
    """In production an endpoint must be https; in every environment it must be public
    (checked at subscription and, resolved, again at every attempt: test_targets.py)."""
    from evently.errors import InvalidWebhookUrl
    from evently.webhooks.subscriptions import check_url
    from evently.webhooks.targets import TargetPolicy

    with pytest.raises(InvalidWebhookUrl):
        check_url("http://example.com/x", require_https=True)
    assert check_url(" https://hooks.example.com/x ", require_https=True)
    strict = TargetPolicy()
    for address in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "100.64.0.1", "fd00::1"):
        assert strict.refusal(address), address
    assert strict.refusal("93.184.215.14") is None
    assert TargetPolicy(allow_private=True).refusal("127.0.0.1") is None
