"""``RateLimit-Policy`` / ``RateLimit`` on every answer of a rate-limited route
(api/http/ratelimit.py): login and register (per IP and per email), the profile's password
check, reserve; on success, on the 429 and on other answers after the count."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from evently.infra.resources import Resources
from evently.settings import Settings
from tests.conftest import AppFactory
from tests.factories import PASSWORD, make_account, make_event, unique_email

AUTH = "/api/v1/auth"
_ITEM = re.compile(r'"([^"]+)"((?:;[a-z]+=\d+)+)')


def parse(field: str) -> dict[str, dict[str, int]]:
    """A RateLimit / RateLimit-Policy structured-field list → {policy: {param: value}}."""
    items = {}
    for item in field.split(","):
        match = _ITEM.fullmatch(item.strip())
        assert match, field
        params = dict(p.split("=") for p in match.group(2).strip(";").split(";"))
        items[match.group(1)] = {k: int(v) for k, v in params.items()}
    return items


def fields(r: httpx.Response) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    return parse(r.headers["ratelimit-policy"]), parse(r.headers["ratelimit"])


@asynccontextmanager
async def limited_client(
    resources: Resources, app_factory: AppFactory, **limits: int
) -> AsyncIterator[httpx.AsyncClient]:
    settings = resources.settings.model_copy(update=limits)
    app = app_factory(dataclasses.replace(resources, settings=settings), settings)
    n = uuid.uuid4().int  # an address no other test uses: per-IP counters start at zero
    ip = f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"
    transport = httpx.ASGITransport(app=app, client=(ip, 40000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def test_login_reports_both_quotas_before_and_at_the_limit(
    resources: Resources, app_factory: AppFactory
) -> None:
    async with limited_client(resources, app_factory, login_rate_limit=3) as client:
        email = unique_email("rlh")
        r = await client.post(f"{AUTH}/register", json={"email": email, "password": PASSWORD})
        assert r.status_code == 202
        assert set(fields(r)[0]) == {"register:ip", "register:email"}
        body = {"email": email, "password": PASSWORD}
        for left in (2, 1, 0):
            r = await client.post(f"{AUTH}/login", json=body)
            assert r.status_code == 200, r.text
            policy, limit = fields(r)
            # per address, per (address, email); the per-email budget counts failures only
            assert policy == {
                "login:ip": {"q": 3, "w": 60},
                "login:ipemail": {"q": 3, "w": 60},
            }
            assert {name: v["r"] for name, v in limit.items()} == {
                "login:ip": left,
                "login:ipemail": left,
            }
            assert all(1 <= v["t"] <= 60 for v in limit.values())
        over = await client.post(f"{AUTH}/login", json=body)
        assert over.status_code == 429
        policy, limit = fields(over)
        assert limit["login:ip"]["r"] == 0
        # the IP quota refused it: the email's was not counted, so only the IP one is reported
        assert set(policy) == set(limit) == {"login:ip"}
        assert int(over.headers["retry-after"]) == limit["login:ip"]["t"]


async def test_other_answers_after_the_count_carry_the_fields_too(
    resources: Resources, app_factory: AppFactory
) -> None:
    async with limited_client(resources, app_factory, login_rate_limit=5) as client:
        wrong = {"email": unique_email("nobody"), "password": "wrong-password-1"}
        r = await client.post(f"{AUTH}/login", json=wrong)
        assert r.status_code == 401
        assert fields(r)[1]["login:ip"]["r"] == 4
        # a failure is also counted against the email's failure budget, after the check
        assert fields(r)[1]["login:email"]["r"] == resources.settings.login_email_failure_limit - 1
        # refused before the count (a malformed body): nothing to report
        r = await client.post(f"{AUTH}/login", json={"email": 1})
        assert r.status_code == 422
        assert "ratelimit" not in r.headers


async def test_the_profile_password_check_reports_its_quota(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    user = await make_account(resources)
    r = await client.put(
        "/api/v1/users/profile",
        json={"full_name": "Ada", "current_password": PASSWORD},
        headers=user.headers,
    )
    assert r.status_code == 200, r.text
    policy, limit = fields(r)
    quota = resources.settings.login_rate_limit
    assert policy == {"profile-password:user": {"q": quota, "w": 60}}
    assert limit["profile-password:user"]["r"] == quota - 1
    # without a password check nothing is counted
    r = await client.put("/api/v1/users/profile", json={"full_name": "B"}, headers=user.headers)
    assert r.status_code == 200
    assert "ratelimit" not in r.headers


@pytest.mark.usefixtures("running_workers")
async def test_reserve_reports_its_quota_on_the_hold_and_the_429(
    resources: Resources, app_factory: AppFactory
) -> None:
    event = await make_event(resources, capacity=10)
    buyer = await make_account(resources)
    body = {"event_id": str(event.id), "quantity": 1}
    async with limited_client(resources, app_factory, reserve_rate_limit=2) as client:
        held = await client.post("/api/v1/bookings/reserve", json=body, headers=buyer.headers)
        assert held.status_code == 201, held.text
        assert fields(held) == (
            {"reserve:user": {"q": 2, "w": 60}},
            {"reserve:user": {"r": 1, "t": fields(held)[1]["reserve:user"]["t"]}},
        )
        unknown = {"event_id": str(uuid.uuid4()), "quantity": 1}
        r = await client.post("/api/v1/bookings/reserve", json=unknown, headers=buyer.headers)
        assert r.status_code == 404
        assert fields(r)[1]["reserve:user"]["r"] == 0
        r = await client.post("/api/v1/bookings/reserve", json=body, headers=buyer.headers)
        assert r.status_code == 429
        assert fields(r)[1]["reserve:user"]["r"] == 0
        assert r.headers["retry-after"] == str(fields(r)[1]["reserve:user"]["t"])


def test_the_openapi_document_describes_the_fields(settings: Settings) -> None:
    from api.app import create_app

    spec = create_app(settings).openapi()
    for method, path in (
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/register"),
        ("put", "/api/v1/users/profile"),
        ("post", "/api/v1/bookings/reserve"),
    ):
        responses = spec["paths"][path][method]["responses"]
        for status, response in responses.items():
            assert {"RateLimit", "RateLimit-Policy"} <= set(response["headers"]), (path, status)
        assert responses["429"]["headers"]["Retry-After"]["required"] is True
    profile = spec["paths"]["/api/v1/users/profile"]["get"]["responses"]["200"]
    assert "RateLimit" not in profile["headers"]
