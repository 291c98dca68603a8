"""The HTTP edge in process (api/http/edge.py): body limits, CORS, security headers, on the
real app and servers. The same behaviour over a real server process: test_server.py."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from api.bookings.fastpath import RESERVE_PATH
from evently.infra.resources import Resources
from evently.inventory.gate import Gate
from evently.settings import Settings
from tests.support.factories import make_event
from tests.support.http import SECURITY, SHOP, assert_secure
from tests.support.temporal import AppFactory

LOGIN = "/api/v1/auth/login"
WEBHOOK = "/api/v1/payments/webhook"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
async def edge_client(
    resources: Resources, app_factory: AppFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a listed CORS origin and a small body limit."""
    settings = resources.settings.model_copy(
        update={"cors_origins": [SHOP, "http://localhost:3000"], "max_body_bytes": 4096}
    )
    app = app_factory(dataclasses.replace(resources, settings=settings), settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


# ---- security headers ----------------------------------------------------------------------


async def test_every_kind_of_answer_carries_the_security_headers(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    sold_out = await make_event(resources, capacity=1)
    await Gate(resources.redis).load(sold_out.id, 0)  # the fast path answers 409 from this
    answers = [
        await client.get("/healthz"),
        await client.get("/api/v1/events"),
        await client.get("/no/such/path"),  # 404 from the router
        await client.post(LOGIN, content=b"{not json", headers=JSON),  # 400 problem
        await client.get("/api/v1/users/profile"),  # 401
        await client.delete("/api/v1/events"),  # 405
        await client.post(RESERVE_PATH, json={"event_id": str(sold_out.id), "quantity": 1}),
    ]
    assert [r.status_code for r in answers] == [200, 200, 404, 400, 401, 405, 409]
    assert answers[-1].json()["code"] == "sold_out"  # the fast path's own answer
    for r in answers:
        assert_secure(r)
        assert "strict-transport-security" not in r.headers  # plain HTTP
        assert "access-control-allow-origin" not in r.headers  # no CORS configured


async def test_hsts_only_over_https(client: httpx.AsyncClient) -> None:
    plain = await client.get("/healthz")
    secure = await client.get("https://testserver/healthz")
    assert "strict-transport-security" not in plain.headers
    assert secure.headers["strict-transport-security"] == "max-age=31536000"
    assert_secure(secure)


async def test_the_docs_pages_get_a_policy_that_allows_what_they_load(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = await client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in csp
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        # every inline script runs by its hash; every external script, style, image is allowed
        for script in re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", r.text, re.S):
            digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
            assert f"'sha256-{digest}'" in directives["script-src"], path
        # and everything it loads from elsewhere comes from an origin the policy names
        for origin in set(re.findall(r'(?:src|href)="(https://[^/"]+)', r.text)):
            assert origin in csp, (path, origin)
    openapi = await client.get("/openapi.json")
    assert openapi.headers["content-security-policy"] == SECURITY["content-security-policy"]


# ---- body limits -----------------------------------------------------------------------------


async def test_a_declared_body_over_the_limit_is_refused_unread(
    edge_client: httpx.AsyncClient,
) -> None:
    r = await edge_client.post(LOGIN, content=b"x" * 5000, headers=JSON)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert (body["code"], body["status"], body["max_bytes"]) == ("payload_too_large", 413, 4096)
    assert_secure(r)
    # at the limit: parsed as usual (here: not JSON)
    ok = await edge_client.post(LOGIN, content=b"x" * 4096, headers=JSON)
    assert ok.status_code == 400


async def test_a_streamed_body_is_cut_off_at_the_limit(edge_client: httpx.AsyncClient) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(100):
            sent += 1024
            yield b" " * 1024

    r = await edge_client.post(LOGIN, content=chunks())  # no Content-Length: chunked
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "payload_too_large"
    assert_secure(r)


async def test_the_webhook_has_its_own_documented_limit(
    client: httpx.AsyncClient, edge_client: httpx.AsyncClient
) -> None:
    from api.payments.endpoints import MAX_BODY

    over = await client.post(WEBHOOK, content=b"{" + b" " * MAX_BODY + b"}")
    assert over.status_code == 413
    assert over.json()["max_bytes"] == MAX_BODY
    # its own limit even where the default is smaller: a 10 kB webhook is read (and refused
    # for its signature), while 10 kB to any other path is over that app's 4 kB default
    body = b'{"id": "evt_1"' + b" " * 10_000 + b"}"
    assert (await edge_client.post(WEBHOOK, content=body)).status_code == 401
    assert (await edge_client.post(LOGIN, content=body)).status_code == 413
    spec = (await client.get("/openapi.json")).json()
    described = spec["paths"][WEBHOOK]["post"]["responses"]["413"]["description"]
    assert "64 KiB" in described
    login = spec["paths"][LOGIN]["post"]["responses"]["413"]["description"]
    assert "1 MiB" in login


# ---- CORS ----------------------------------------------------------------------------------


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_preflight_from_a_listed_origin_is_allowed(edge_client: httpx.AsyncClient) -> None:
    r = await edge_client.options("/api/v1/bookings/reserve", headers=_preflight(SHOP))
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed = r.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "idempotency-key", "if-none-match"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert int(r.headers["access-control-max-age"]) > 0
    assert r.headers["vary"] == "Origin"
    assert_secure(r)


async def test_a_preflight_from_another_origin_gets_nothing(
    edge_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    for c, origin in (
        (edge_client, "https://evil.example.com"),
        (edge_client, "https://shop.example.com.evil.example.com"),
        (edge_client, "null"),
        (client, SHOP),  # nothing listed by default
    ):
        r = await c.options("/api/v1/bookings/reserve", headers=_preflight(origin))
        assert r.status_code == 405, origin
        assert r.headers["content-type"] == "application/problem+json"
        assert not any(h.startswith("access-control-") for h in r.headers), r.headers
        assert_secure(r)


async def test_answers_to_a_listed_origin_allow_it_with_credentials(
    edge_client: httpx.AsyncClient,
) -> None:
    r = await edge_client.get(
        "/api/v1/events", headers={"Origin": "http://localhost:3000", "Cookie": "a=b"}
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert r.headers["access-control-allow-credentials"] == "true"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "link", "ratelimit", "ratelimit-policy", "retry-after"} <= exposed
    other = await edge_client.get("/api/v1/events", headers={"Origin": "https://evil.example.com"})
    assert "access-control-allow-origin" not in other.headers
    assert other.headers["vary"] == "Origin"  # the answer depends on Origin: caches must know
    missing = await edge_client.get(f"/api/v1/events/{uuid.uuid4()}", headers={"Origin": SHOP})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == SHOP  # errors are readable too


def test_cors_origins_must_be_exact_origins() -> None:
    assert Settings(
        cors_origins=" https://Shop.example.com/ ,http://localhost:3000"
    ).cors_origins == [
        "https://shop.example.com",
        "http://localhost:3000",
    ]
    assert Settings(cors_origins="https://a.example:443").cors_origins == ["https://a.example"]
    for bad in ("*", "https://*.example.com", "https://a.example/app", "ftp://a.example", "a"):
        with pytest.raises(ValueError, match="EVENTLY_CORS_ORIGINS"):
            Settings(cors_origins=bad)
