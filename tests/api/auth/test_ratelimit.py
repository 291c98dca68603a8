"""Rate limits on login and register (real Redis), and auth with Redis down (fails open)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from evently.infra.resources import Resources, open_resources
from evently.ratelimit import RateLimiter
from evently.settings import Settings
from tests.support.auth import AUTH, PASSWORD, register
from tests.support.factories import unique_email
from tests.support.problems import assert_problem
from tests.support.temporal import AppFactory


def _ip() -> str:
    """A client address no other test uses, so per-IP counters start at zero."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@asynccontextmanager
async def _client(
    app_res: Resources, settings: Settings, ip: str, app_factory: AppFactory
) -> AsyncIterator[httpx.AsyncClient]:
    # the app reads settings from its Resources: share the clients, swap the settings
    app = app_factory(dataclasses.replace(app_res, settings=settings), settings)
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def _until_allowed(client: httpx.AsyncClient, path: str, body: dict[str, str]) -> int:
    for _ in range(100):  # ~10 s at most; the window is 1 s
        r = await client.post(path, json=body)
        if r.status_code != 429:
            return r.status_code
        await asyncio.sleep(0.1)
    raise AssertionError("still rate limited long after the window")


async def test_limiter_counts_per_key_and_reports_retry_after(resources: Resources) -> None:
    limiter = RateLimiter(resources.redis)
    key = f"test:scope:{uuid.uuid4()}"
    hits = [await limiter.hit(key, 3, 60) for _ in range(3)]
    assert [(h.exceeded, h.remaining, h.retry_after) for h in hits] == [
        (False, 2, None),
        (False, 1, None),
        (False, 0, None),
    ]
    assert all(h.counted and h.limit == 3 and h.window_seconds == 60 for h in hits)
    assert all(1 <= h.reset_seconds <= 60 for h in hits)
    over = await limiter.hit(key, 3, 60)
    assert over.exceeded
    assert over.remaining == 0
    assert over.retry_after is not None
    assert 1 <= over.retry_after <= 60
    assert over.policy == "test:scope"  # the key's first two parts, never the client's id
    assert not (await limiter.hit(f"{key}:other", 3, 60)).exceeded
    ttl = await resources.redis.ttl(f"rl:{key}")
    assert 0 < ttl <= 60
    with pytest.raises(ValueError, match="positive"):
        await limiter.hit(key, 0, 60)


async def test_login_over_the_limit_is_429_then_recovers(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    limited = settings.model_copy(update={"login_rate_limit": 3, "rate_limit_window_seconds": 1})
    email = unique_email("rl")
    async with _client(resources, limited, _ip(), app_factory) as client:
        await register(client, email)
        body = {"email": email, "password": PASSWORD}
        # one burst: the counters are hit before the (slow) password check, so the burst is
        # counted within one window however slow argon2 is on this machine
        burst = await asyncio.gather(*(client.post(f"{AUTH}/login", json=body) for _ in range(8)))
        codes = sorted(r.status_code for r in burst)
        assert set(codes) == {200, 429}, codes
        assert codes.count(200) <= 6  # at most the limit per window (twice, if it rolled over)
        r = next(r for r in burst if r.status_code == 429)
        problem = assert_problem(r, 429, "rate_limited")
        assert "login" in problem["detail"]
        assert r.headers["retry-after"] == "1"
        assert await _until_allowed(client, f"{AUTH}/login", body) == 200


async def test_login_limit_is_per_email_across_addresses(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    limited = settings.model_copy(update={"login_rate_limit": 2, "rate_limit_window_seconds": 60})
    email = unique_email("rl-email")
    async with _client(resources, limited, _ip(), app_factory) as first:
        await register(first, email)
        body = {"email": email, "password": "wrong-password-1"}
        for _ in range(2):
            assert_problem(await first.post(f"{AUTH}/login", json=body), 401)
    # a different IP guessing the same account's password is still stopped
    async with _client(resources, limited, _ip(), app_factory) as second:
        r = await second.post(f"{AUTH}/login", json={**body, "email": email.upper()})
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) > 1
        # ...while other accounts from that address are fine
        other = unique_email("rl-other")
        r = await second.post(f"{AUTH}/login", json={"email": other, "password": PASSWORD})
        assert_problem(r, 401, "invalid_credentials")


async def test_register_over_the_limit_is_429_per_ip_then_recovers(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    limited = settings.model_copy(update={"register_rate_limit": 2, "rate_limit_window_seconds": 2})
    async with _client(resources, limited, _ip(), app_factory) as client:
        bodies = [{"email": unique_email("rl-reg"), "password": PASSWORD} for _ in range(6)]
        burst = await asyncio.gather(*(client.post(f"{AUTH}/register", json=b) for b in bodies))
        codes = sorted(r.status_code for r in burst)
        assert set(codes) == {201, 429}, codes
        assert codes.count(201) <= 4
        r = next(r for r in burst if r.status_code == 429)
        assert_problem(r, 429, "rate_limited")
        assert "register" in r.json()["detail"]
        assert r.headers["retry-after"] in {"1", "2"}
        email = unique_email("rl-reg-later")
        status = await _until_allowed(
            client, f"{AUTH}/register", {"email": email, "password": PASSWORD}
        )
        assert status == 201


async def test_auth_works_with_redis_down(
    settings: Settings, state_dir: Path, caplog: pytest.LogCaptureFixture, app_factory: AppFactory
) -> None:
    broken = settings.model_copy(
        update={
            "redis_url": f"unix://{state_dir}/no-such-redis-{uuid.uuid4().hex[:6]}.sock",
            "login_rate_limit": 1,
            "register_rate_limit": 1,
        }
    )
    caplog.set_level(logging.WARNING, logger="evently.ratelimit")
    async with open_resources(broken) as res, _client(res, broken, _ip(), app_factory) as client:
        email = unique_email("noredis")
        pair = await register(client, email)
        for _ in range(3):  # the limits (1) are not enforced: the limiter fails open
            r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            assert "ratelimit" not in r.headers  # nothing was counted: nothing to report
        r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text
        wrong = await client.post(f"{AUTH}/login", json={"email": email, "password": "x" * 12})
        assert_problem(wrong, 401, "invalid_credentials")
    assert any("failing open" in rec.getMessage() for rec in caplog.records)
