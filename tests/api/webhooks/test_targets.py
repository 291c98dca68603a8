"""Webhook destinations (issue 28): registration and delivery refuse loopback, private,
IPv6-embedded and rebinding destinations and redirects to them; nothing reaches the loopback
receiver. The API and the delivery activity run with the production default
(``EVENTLY_WEBHOOK_ALLOW_PRIVATE_TARGETS`` off) and ``EVENTLY_WEBHOOK_ALLOWED_NETWORKS`` =
127.0.0.2/32: a receiver on 127.0.0.2 stands for a public site (this machine only reaches
loopback), 127.0.0.1 stays refused. Names are answered by a stub resolver (the resolver is
pluggable), which may answer differently on each call (DNS rebinding)."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, text
from temporalio.client import Client

from activities.webhooks import WebhookActivities
from api.webhooks.deps import webhook_resolver
from evently.db.models import WebhookAttempt
from evently.infra.resources import Resources
from evently.settings import Settings
from evently.webhooks import outbox, sender, subscriptions, targets
from tests.support.factories import Account, make_account
from tests.support.organizations import Org, make_org
from tests.support.problems import assert_problem
from tests.support.temporal import AppFactory
from tests.support.webhook_receiver import Receiver
from workflows.webhooks.contract import AttemptInput, AttemptOutcome


class StubResolver:
    """Answers each name from a script: the n-th lookup of a name gets its n-th answer (the
    last one from then on). Counts the lookups."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answers = self.script.get(host)
        if not answers:
            raise OSError(f"{host}: unknown name")
        n = sum(1 for h in self.calls if h == host)
        return answers[min(n, len(answers)) - 1]


@pytest.fixture
async def loopback() -> AsyncIterator[Receiver]:
    r = await Receiver().start()  # 127.0.0.1: must never be reached
    yield r
    await r.stop()


@pytest.fixture
async def public() -> AsyncIterator[Receiver]:
    r = await Receiver(host="127.0.0.2").start()  # the operator-allowed "public site"
    yield r
    await r.stop()


@pytest.fixture
def strict(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "webhook_allow_private_targets": False,
            "webhook_allowed_networks": "127.0.0.2/32",
        }
    )


@pytest.fixture
def strict_resources(resources: Resources, strict: Settings) -> Resources:
    return dataclasses.replace(resources, settings=strict)


def refused_urls(loopback: Receiver, public: Receiver) -> dict[str, str]:
    return {
        "loopback": f"http://127.0.0.1:{loopback.port}/hooks",
        "ipv4-mapped": f"http://[::ffff:127.0.0.1]:{loopback.port}/hooks",
        "nat64": "http://[64:ff9b::a00:1]/",
        "6to4": f"http://[2002:7f00:1::]:{loopback.port}/hooks",
        "name to loopback": f"http://inside.test:{loopback.port}/hooks",
    }


async def test_registration_refuses_non_public_destinations_and_changes_nothing(
    resources: Resources,
    strict_resources: Resources,
    app_factory: AppFactory,
    client: httpx.AsyncClient,
    loopback: Receiver,
    public: Receiver,
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    resolver = StubResolver(
        {
            "inside.test": [["127.0.0.1"]],
            "public.test": [["127.0.0.2"]],
            "mixed.test": [["127.0.0.2", "10.0.0.7"]],
        }
    )
    app = app_factory(strict_resources)
    app.dependency_overrides[webhook_resolver] = lambda: resolver
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as api:
        urls = [*refused_urls(loopback, public).values(), "http://mixed.test/hooks"]
        for url in urls:
            r = await api.post(
                org.url("/webhooks"),
                json={"url": url, "event_types": ["event.cancelled"]},
                headers=org.owner.headers,
            )
            body = assert_problem(r, 422, "webhook_url_not_allowed")
            assert "refused" in body["detail"]
        listed = await api.get(org.url("/webhooks"), headers=org.owner.headers)
        assert listed.json()["total"] == 0  # nothing was created...
        audit = await api.get(org.url("/audit"), headers=org.owner.headers)
        assert audit.json()["total"] == 0 or all(
            e["action"] != "webhook.created" for e in audit.json()["items"]
        )  # ...nor audited

        # a name that resolves to the allowed network is accepted; changing it to a
        # refused one is refused and leaves it as it was
        ok = await api.post(
            org.url("/webhooks"),
            json={
                "url": f"http://public.test:{public.port}/hooks",
                "event_types": ["event.cancelled"],
            },
            headers=org.owner.headers,
        )
        assert ok.status_code == 201, ok.text
        hook = ok.json()
        for url in urls:
            r = await api.patch(
                org.url(f"/webhooks/{hook['id']}"), json={"url": url}, headers=org.owner.headers
            )
            assert_problem(r, 422, "webhook_url_not_allowed")
        got = await api.get(org.url(f"/webhooks/{hook['id']}"), headers=org.owner.headers)
        assert got.json()["url"] == hook["url"]
        # the problem is documented on both routes
        spec = (await api.get("/openapi.json")).json()
        path = spec["paths"]["/api/v1/organizations/{org_id}/webhooks"]["post"]
        assert "422" in path["responses"]
        assert "webhook_url_not_allowed" in json.dumps(path["responses"]["422"])
    assert loopback.requests == 0
    assert public.requests == 0


async def _enqueue(
    res: Resources, org: Org, account: Account, urls: dict[str, str]
) -> dict[str, uuid.UUID]:
    """Subscriptions as they may exist (registered before this check, or through a name that
    resolved elsewhere then), one message for them, its deliveries marked started (the
    session's relay never takes them: this test runs the attempts itself)."""
    subs: dict[uuid.UUID, str] = {}
    async with res.sessionmaker() as session:
        for name, url in urls.items():
            sub = await subscriptions.create(
                session,
                uuid.UUID(org.id),
                url=url,
                event_types=["event.cancelled"],
                description=name,
                created_by=account.user.id,
            )
            subs[sub.id] = name
        await session.commit()
    async with res.engine.begin() as conn:
        await conn.execute(
            text("SELECT evently_webhook_enqueue(:org, 'event.cancelled', :key, '{}'::jsonb)"),
            {"org": uuid.UUID(org.id), "key": f"test-{uuid.uuid4()}"},
        )
        rows = (
            await conn.execute(
                text(
                    "SELECT id, subscription_id FROM webhook_deliveries "
                    "WHERE subscription_id = ANY(:s)"
                ),
                {"s": list(subs)},
            )
        ).all()
        await outbox.mark_started(conn, [r.id for r in rows])
    return {subs[r.subscription_id]: r.id for r in rows}


async def test_delivery_refuses_rebinding_embedded_and_redirected_destinations(
    resources: Resources,
    strict_resources: Resources,
    client: httpx.AsyncClient,
    temporal_client: Client,
    loopback: Receiver,
    public: Receiver,
) -> None:
    admin = await make_account(resources, "admin")
    org = await make_org(client, resources, admin, roles=("owner",))
    urls = refused_urls(loopback, public)
    # registered while it resolved to the allowed address; now it answers loopback
    urls["name to loopback"] = f"http://rebind.test:{loopback.port}/hooks"
    urls["redirect to loopback"] = f"http://redirect.test:{public.port}/hooks"
    urls["allowed"] = f"http://public.test:{public.port}/hooks"
    resolver = StubResolver(
        {
            "rebind.test": [["127.0.0.2"], ["127.0.0.1"]],
            "redirect.test": [["127.0.0.2"]],
            "public.test": [["127.0.0.2"]],
        }
    )
    # the registration check sees the allowed address
    await subscriptions.check_destination(
        urls["name to loopback"], targets.TargetPolicy.of(strict_resources.settings), resolver
    )
    deliveries = await _enqueue(resources, org, org.owner, urls)
    assert set(deliveries) == set(urls)
    acts = WebhookActivities(strict_resources, temporal_client, resolver=resolver)
    results = {}
    for name, delivery_id in deliveries.items():
        if name == "redirect to loopback":
            public.redirect_to = f"http://127.0.0.1:{loopback.port}/hooks"
        elif name == "allowed":
            public.redirect_to = None
            async with resources.engine.connect() as conn:
                secret = (
                    await conn.execute(
                        text("SELECT secret FROM webhook_subscriptions WHERE url = :u"),
                        {"u": urls["allowed"]},
                    )
                ).scalar_one()
            public.secret = secret
        results[name] = await acts.deliver_webhook(
            AttemptInput(delivery_id=delivery_id, attempt=1, timeout_seconds=2.0)
        )

    assert loopback.requests == 0, "a refused destination was reached"
    for name, result in results.items():
        if name == "allowed":
            assert result.outcome == AttemptOutcome.DELIVERED, result
            continue
        assert result.outcome == AttemptOutcome.RETRY, (name, result)
        assert result.status_code is None, (name, result)
        assert "refused" in (result.error or ""), (name, result)
    # the rebinding name was looked up once per delivery (no second lookup to connect)
    assert resolver.calls.count("rebind.test") == 2
    # the allowed site got the redirect hop and the delivery, with the name as Host
    assert public.requests == 2
    assert public.host_headers == [f"redirect.test:{public.port}", f"public.test:{public.port}"]
    assert len(public.processed) == 1
    async with resources.sessionmaker() as session:
        found = await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries.values()))
        )
        attempts = {a.delivery_id: a for a in found}
    ok = attempts[deliveries["allowed"]]
    assert ok.status_code == 200
    assert ok.response_headers
    assert ok.response_headers["x-receiver"] == "evently-tests"
    assert attempts[deliveries["redirect to loopback"]].response_headers is None


async def test_sender_follows_at_most_three_checked_redirects(public: Receiver) -> None:
    public.redirect_to = f"http://127.0.0.2:{public.port}/again"
    policy = targets.TargetPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.2/32"),))
    async with sender.client() as http:
        sent = await sender.send(
            http,
            public.url,
            secret="whsec_" + "A" * 44,
            msg_id="msg_x",
            payload=b"{}",
            timeout_seconds=2.0,
            policy=policy,
        )
    assert sent.status_code == 307
    assert sent.error == "more than 3 redirects"
    assert public.requests == 4
