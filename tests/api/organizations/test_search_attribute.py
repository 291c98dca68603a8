"""Support filters by organizer in the Temporal UI: every workflow an organization's sale
starts carries its ``OrganizationId`` (set at start by each workflow's client), and the
reserve path learns the event's organization without a Postgres read per reservation."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from evently.infra.resources import Resources
from evently.organizations import EVENT_ORGANIZATIONS, EventOrganizations
from tests.support.factories import make_account, make_accounts, make_event
from tests.support.organizations import confirmed_booking, make_org, org_event, org_venue
from tests.support.temporal import AppFactory
from workers.main import build_workers
from workflows import common


@pytest.fixture
async def ns_app(
    ns_client: Client, resources: Resources, app_factory: AppFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The app and every worker pool in a namespace of their own: what runs there is this
    test's only."""
    queues = [common.BOOKING, common.SEARCH, common.PAYMENTS]  # the webhook relay is global
    workers = build_workers(ns_client, resources, queues, resources.settings)
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        app = app_factory(resources, temporal=ns_client)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_every_workflow_of_an_organizations_sale_carries_its_organization_id(
    ns_app: httpx.AsyncClient, ns_client: Client, resources: Resources
) -> None:
    client = ns_app
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner", "finance"))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=1)  # search sync
    fan, waiting = await make_accounts(resources, 2)
    booking = await confirmed_booking(client, fan, event["id"])  # a booking; sold out
    joined = await client.post(
        "/api/v1/waitlist/join",
        json={"event_id": event["id"], "quantity": 1},
        headers=waiting.headers,
    )
    assert joined.status_code == 201, joined.text
    refund = await client.post(  # a booking change; the seats go to the waitlist workflow
        org.url(f"/events/{event['id']}/bookings/{booking}/refund"),
        headers=org.members["finance"].headers,
    )
    assert refund.status_code == 200, refund.text
    entry = joined.json()["entry_id"]
    deadline = time.monotonic() + 30
    while (await client.get(f"/api/v1/waitlist/{entry}", headers=waiting.headers)).json()[
        "status"
    ] != "offered":
        assert time.monotonic() < deadline, "no offer"
        await asyncio.sleep(0.2)
    accepted = await client.post(f"/api/v1/waitlist/{entry}/accept", headers=waiting.headers)
    assert accepted.status_code == 201, accepted.text  # a booking from the offer
    cancelled = await client.delete(org.url(f"/events/{event['id']}"), headers=org.owner.headers)
    assert cancelled.status_code == 202  # the event's cancellation

    expected_types = {
        "EventIndexSyncWorkflow",
        "BookingWorkflow",
        "BookingChangeWorkflow",
        "WaitlistWorkflow",
        "EventCancellationWorkflow",
    }
    deadline = time.monotonic() + 30
    while True:  # visibility catches up asynchronously
        found = [wf async for wf in ns_client.list_workflows()]
        if {wf.workflow_type for wf in found} >= expected_types and len(found) >= 6:
            break
        assert time.monotonic() < deadline, sorted(wf.workflow_type for wf in found)
        await asyncio.sleep(0.3)
    missing = [
        (wf.workflow_type, wf.id)
        for wf in found
        if wf.typed_search_attributes.get(common.ORGANIZATION_ID) != org.id
    ]
    assert not missing, missing
    by_org = [wf async for wf in ns_client.list_workflows(f"OrganizationId = '{org.id}'")]
    # listed later: it may hold runs started since (a search sync), never fewer
    assert {(wf.id, wf.run_id) for wf in found} <= {(wf.id, wf.run_id) for wf in by_org}


async def test_the_reserve_path_reads_an_events_organization_once_per_process(
    client: httpx.AsyncClient, resources: Resources, running_workers: None
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    venue = await org_venue(client, org)
    event = await org_event(client, org, venue, publish=True, capacity=50)
    buyers = await make_accounts(resources, 5)
    before = EVENT_ORGANIZATIONS.reads
    for buyer in buyers:
        r = await client.post(
            "/api/v1/bookings/reserve",
            json={"event_id": event["id"], "quantity": 1},
            headers=buyer.headers,
        )
        assert r.status_code == 201, r.text
    assert EVENT_ORGANIZATIONS.reads - before <= 1
    assert EVENT_ORGANIZATIONS.known(uuid.UUID(event["id"])) == uuid.UUID(org.id)


async def test_concurrent_first_asks_share_one_read_and_unknown_events_are_not_kept(
    resources: Resources,
) -> None:
    cache = EventOrganizations(maxsize=2)
    for _ in range(3):
        await make_event(resources)
    async with resources.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id, organization_id FROM events ORDER BY created_at DESC LIMIT 3")
            )
        ).all()
    assert len(rows) == 3
    first = rows[0]
    answers = await asyncio.gather(*(cache.get(resources.engine, first.id) for _ in range(20)))
    assert set(answers) == {first.organization_id}
    assert cache.reads == 1
    assert await cache.get(resources.engine, uuid.uuid4()) is None
    assert cache.reads == 2
    for row in rows[1:]:
        await cache.get(resources.engine, row.id)
    assert cache.known(first.id) is None  # the least recently used went (maxsize 2)
