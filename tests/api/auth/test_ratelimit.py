"""Rate limits on login and register (real Redis), nobody locked out by strangers (issue 28),
and with Redis down (counted per process)."""

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

from evently.infra import metrics
from evently.infra.resources import Resources, open_resources
from evently.ratelimit import LocalWindows, RateLimiter
from evently.settings import Settings
from tests.api.auth.helpers import AUTH, PASSWORD, assert_problem, register
from tests.conftest import AppFactory
from tests.factories import unique_email


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


async def test_fifty_wrong_passwords_from_one_address_do_not_lock_the_owner_out(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    """Issue 28: a stranger's guesses stop the stranger's address, never the account's owner
    at another address."""
    limited = settings.model_copy(
        update={
            "login_rate_limit": 10,
            "login_email_failure_limit": 20,
            "rate_limit_window_seconds": 60,
        }
    )
    victim = unique_email("victim")
    async with _client(resources, limited, _ip(), app_factory) as attacker:
        await register(attacker, victim)  # an ordinary sign-up (2 attempts from this address)
        wrong = {"email": victim, "password": "wrong-password-1"}
        codes = [(await attacker.post(f"{AUTH}/login", json=wrong)).status_code for _ in range(50)]
        assert codes.count(429) >= 40, codes  # the address's budget (10 a window) is spent
        assert set(codes) == {401, 429}, codes
        # the right password from the guessing address waits too: the budget is per address
        r = await attacker.post(f"{AUTH}/login", json={"email": victim, "password": PASSWORD})
        assert_problem(r, 429, "rate_limited")
    async with _client(resources, limited, _ip(), app_factory) as owner:
        r = await owner.post(f"{AUTH}/login", json={"email": victim, "password": PASSWORD})
        assert r.status_code == 200, r.text  # at once, from the owner's own address


async def test_guesses_spread_over_addresses_are_slowed_per_email_but_never_lock_the_owner_out(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    """The per-email budget counts failures only, after the password check: beyond it a wrong
    password is answered 429 (after a delay), the right password still logs in."""
    limited = settings.model_copy(
        update={
            "login_rate_limit": 3,
            "login_email_failure_limit": 4,
            "login_failure_delay_seconds": 0.05,
            "rate_limit_window_seconds": 60,
        }
    )
    victim = unique_email("spread")
    async with _client(resources, limited, _ip(), app_factory) as owner:
        await register(owner, victim)
        for _ in range(2):  # correct logins are not failures: they do not count per email
            r = await owner.post(f"{AUTH}/login", json={"email": victim, "password": PASSWORD})
            assert r.status_code == 200, r.text
    wrong = {"email": victim, "password": "wrong-password-2"}
    codes = []
    for _ in range(4):  # a botnet: two guesses from each of four addresses
        async with _client(resources, limited, _ip(), app_factory) as bot:
            for _ in range(2):
                codes.append((await bot.post(f"{AUTH}/login", json=wrong)).status_code)
    assert codes == [401] * 4 + [429] * 4, codes  # the fifth failure and on: 429
    async with _client(resources, limited, _ip(), app_factory) as bot:
        r = await bot.post(f"{AUTH}/login", json={**wrong, "email": victim.upper()})
        problem = assert_problem(r, 429, "rate_limited")
        assert "login" in problem["detail"]
        assert int(r.headers["retry-after"]) > 1
        # ...while other accounts from that address are fine
        other = unique_email("rl-other")
        r = await bot.post(f"{AUTH}/login", json={"email": other, "password": PASSWORD})
        assert_problem(r, 401, "invalid_credentials")
        # and the owner's right password, from any address, logs in at once
        r = await bot.post(f"{AUTH}/login", json={"email": victim, "password": PASSWORD})
        assert r.status_code == 200, r.text


async def test_register_over_the_limit_is_429_per_ip_then_recovers(
    settings: Settings, resources: Resources, app_factory: AppFactory
) -> None:
    limited = settings.model_copy(update={"register_rate_limit": 2, "rate_limit_window_seconds": 2})
    async with _client(resources, limited, _ip(), app_factory) as client:
        bodies = [{"email": unique_email("rl-reg"), "password": PASSWORD} for _ in range(6)]
        burst = await asyncio.gather(*(client.post(f"{AUTH}/register", json=b) for b in bodies))
        codes = sorted(r.status_code for r in burst)
        assert set(codes) == {202, 429}, codes
        assert codes.count(202) <= 4
        r = next(r for r in burst if r.status_code == 429)
        assert_problem(r, 429, "rate_limited")
        assert "register" in r.json()["detail"]
        assert r.headers["retry-after"] in {"1", "2"}
        email = unique_email("rl-reg-later")
        status = await _until_allowed(
            client, f"{AUTH}/register", {"email": email, "password": PASSWORD}
        )
        assert status == 202


async def test_auth_works_with_redis_down_and_is_limited_per_process(
    settings: Settings, state_dir: Path, caplog: pytest.LogCaptureFixture, app_factory: AppFactory
) -> None:
    """Redis refusing connections: auth keeps working, and the login and sign-up limits do not
    switch off — each process counts on its own, logs it, and readiness says so."""
    broken = settings.model_copy(
        update={
            "redis_url": f"unix://{state_dir}/no-such-redis-{uuid.uuid4().hex[:6]}.sock",
            "login_rate_limit": 2,
            "register_rate_limit": 2,
        }
    )
    caplog.set_level(logging.WARNING, logger="evently.ratelimit")
    fallback = metrics.RATE_LIMIT_FALLBACK.labels(scope="login:ip")
    before = fallback._value.get()
    async with open_resources(broken) as res, _client(res, broken, _ip(), app_factory) as client:
        email = unique_email("noredis")
        pair = await register(client, email)
        body = {"email": email, "password": PASSWORD}
        r = await client.post(f"{AUTH}/login", json=body)
        assert r.status_code == 200, r.text
        # this process's own count is what the fields report: register() logged in once
        # already (sign-up answers 202 without tokens since issue 28), so this is the second
        assert r.headers["ratelimit"].startswith('"login:ip";r=0;'), r.headers
        assert_problem(await client.post(f"{AUTH}/login", json=body), 429, "rate_limited")
        r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        assert r.status_code == 200, r.text  # not rate limited
        ready = (await client.get("/health/ready")).json()
        assert ready["rate_limits"] == "degraded: per-process"
        assert "redis" in ready["degraded"]
        # sign-up too: a second new address gets its own per-process count
        async with _client(res, broken, _ip(), app_factory) as other:
            for n in range(2):
                await register(other, unique_email(f"noredis-{n}"))
            r = await other.post(
                f"{AUTH}/register", json={"email": unique_email("noredis"), "password": PASSWORD}
            )
            assert_problem(r, 429, "rate_limited")
    assert fallback._value.get() >= before + 3
    assert any("counting per process" in rec.getMessage() for rec in caplog.records)


async def test_local_windows_count_reset_and_stay_bounded() -> None:
    windows = LocalWindows(max_keys=4)
    assert [windows.hit("a", 60)[0] for _ in range(3)] == [1, 2, 3]
    count, left = windows.hit("b", 60)
    assert count == 1
    assert 59 < left <= 60
    for n in range(10):
        windows.hit(f"k{n}", 60)
    assert len(windows._windows) <= 4
