"""Account recovery and email verification (issue 32) on the real Postgres and Redis: the reset
request reveals nothing, the mailed token works once within its life and signs the account out
everywhere, the limits per email and per address hold; the welcome's verification link."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from sqlalchemy import text

from evently import account_tokens
from evently.infra.resources import Resources
from evently.security import hash_refresh_token
from evently.settings import Settings
from tests.support.auth import AUTH, PASSWORD, PROFILE, bearer, log_in, register
from tests.support.factories import unique_email
from tests.support.problems import assert_problem
from tests.support.temporal import AppFactory

NEW_PASSWORD = "a-brand-new-password"


def _ip() -> str:
    """A client address no other test uses, so per-address counters start at zero."""
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@asynccontextmanager
async def _client(
    res: Resources, app_factory: AppFactory, ip: str | None = None, **settings: Any
) -> AsyncIterator[httpx.AsyncClient]:
    changed = res.settings.model_copy(update=settings)
    app = app_factory(dataclasses.replace(res, settings=changed), changed)
    transport = httpx.ASGITransport(app=app, client=(ip or _ip(), 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield client


async def _tokens(res: Resources, email: str, kind: str) -> list[str]:
    """The tokens the account's ``kind`` mails carry, as the outbox recomputes them."""
    purpose: account_tokens.Purpose = (
        "password_reset" if kind == "password_reset" else "email_verification"
    )
    async with res.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT n.payload FROM notifications n JOIN users u ON u.id = n.user_id "
                "WHERE lower(u.email) = lower(:e) AND n.kind = :k ORDER BY n.created_at"
            ),
            {"e": email, "k": kind},
        )
        ids = [uuid.UUID(r.payload["token_id"]) for r in rows]
    return [account_tokens.token_for(res.settings, purpose, i) for i in ids]


async def _reset(client: httpx.AsyncClient, email: str) -> httpx.Response:
    r = await client.post(f"{AUTH}/password-reset", json={"email": email})
    assert r.status_code == 202, r.text
    return r


async def test_reset_reveals_nothing_works_once_and_signs_out_everywhere(
    resources: Resources, app_factory: AppFactory
) -> None:
    email, stranger = unique_email("reset"), unique_email("nobody")
    async with _client(resources, app_factory) as client:
        pair = await register(client, email)
        known = await _reset(client, email)
        unknown = await _reset(client, stranger)
        assert known.json() == unknown.json()
        assert known.headers["content-length"] == unknown.headers["content-length"]
        assert "token" not in known.text
        # a mail for the account, nothing at all for an address without one
        (token,) = await _tokens(resources, email, "password_reset")
        async with resources.engine.connect() as conn:
            stored = (
                await conn.execute(
                    text(
                        "SELECT token_hash, email, expires_at - created_at AS life "
                        "FROM account_tokens WHERE email = :e AND purpose = 'password_reset'"
                    ),
                    {"e": email},
                )
            ).one()
            assert stored.token_hash == hash_refresh_token(token)  # only its hash is stored
            assert stored.life.total_seconds() == 30 * 60
            assert not await conn.scalar(
                text("SELECT count(*) FROM account_tokens WHERE email = :e"), {"e": stranger}
            )

        # a weak new password is refused and the link keeps working
        weak = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": token, "password": "short"}
        )
        assert_problem(weak, 422, "weak_password")
        ok = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "password_changed"
        # once only
        again = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
        )
        assert_problem(again, 400, "reset_token_invalid")
        # every session of the account is over; the old password is gone, the new one works
        r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
        assert_problem(r, 401, "token_revoked")
        r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
        assert_problem(r, 401, "invalid_credentials")
        fresh = await log_in(client, email, NEW_PASSWORD)
        assert fresh["user"]["email_verified"] is True  # the link reached the mailbox


async def test_expired_foreign_and_garbage_tokens_are_refused(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("reset-exp")
    async with _client(resources, app_factory) as client:
        await register(client, email)
        await _reset(client, email)
        await _reset(client, email)
        first, second = await _tokens(resources, email, "password_reset")
        async with resources.engine.begin() as conn:  # the first link is 31 minutes old
            await conn.execute(
                text(
                    "UPDATE account_tokens SET expires_at = now() - interval '1 minute' "
                    "WHERE token_hash = :h"
                ),
                {"h": hash_refresh_token(first)},
            )
        for bad in (first, "x" * 43, second + "x", second[:-1]):
            r = await client.post(
                f"{AUTH}/password-reset/confirm", json={"token": bad, "password": NEW_PASSWORD}
            )
            assert_problem(r, 400, "reset_token_invalid")
        r = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": "", "password": NEW_PASSWORD}
        )
        assert_problem(r, 422, "validation_error")
        # a link mailed before the account's email changed is worth nothing
        pair = await log_in(client, email)
        moved = unique_email("moved")
        r = await client.put(
            PROFILE,
            json={"email": moved, "current_password": PASSWORD},
            headers=bearer(pair["access_token"]),
        )
        assert r.status_code == 200, r.text
        r = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": second, "password": NEW_PASSWORD}
        )
        assert_problem(r, 400, "reset_token_invalid")


async def test_a_reset_spends_every_other_link_and_concurrent_uses_change_it_once(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("reset-race")
    async with _client(resources, app_factory) as client:
        await register(client, email)
        await _reset(client, email)
        await _reset(client, email)
        first, second = await _tokens(resources, email, "password_reset")
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{AUTH}/password-reset/confirm",
                    json={"token": first, "password": f"{NEW_PASSWORD}-{i}"},
                )
                for i in range(5)
            )
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 400, 400, 400, 400], [r.text for r in answers]
        r = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": second, "password": NEW_PASSWORD}
        )
        assert_problem(r, 400, "reset_token_invalid")


async def test_reset_requests_are_limited_per_email_and_per_address(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("reset-rl")
    limits = {"password_reset_email_limit": 2, "password_reset_ip_limit": 3}
    async with _client(resources, app_factory) as client:
        await register(client, email)
    # per email, from anywhere: the third request within the window is 429
    for _ in range(2):
        async with _client(resources, app_factory, **limits) as client:
            await _reset(client, email)
    async with _client(resources, app_factory, **limits) as client:
        r = await client.post(f"{AUTH}/password-reset", json={"email": email})
        problem = assert_problem(r, 429, "rate_limited")
        assert "password reset" in problem["detail"]
        assert r.headers["retry-after"]
    assert len(await _tokens(resources, email, "password_reset")) == 2
    # per address, whatever the emails (known or not: the same answers)
    async with _client(resources, app_factory, **limits) as client:
        for _ in range(3):
            await _reset(client, unique_email("any"))
        r = await client.post(f"{AUTH}/password-reset", json={"email": unique_email("any")})
        assert_problem(r, 429, "rate_limited")


async def test_the_welcome_link_verifies_the_address_until_the_email_changes(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("verify")
    async with _client(resources, app_factory) as client:
        pair = await register(client, email)
        assert pair["user"]["email_verified"] is False  # unverified accounts can log in (buy)
        (token,) = await _tokens(resources, email, "account_welcome")
        for _ in range(2):  # a double click, a mail scanner: the same answer
            r = await client.post(f"{AUTH}/verify-email", json={"token": token})
            assert r.status_code == 200, r.text
            assert r.json() == {"status": "verified", "email_verified": True}
        me = await client.get(PROFILE, headers=bearer(pair["access_token"]))
        assert me.json()["email_verified"] is True
        r = await client.post(f"{AUTH}/verify-email", json={"token": token[:-2]})
        assert_problem(r, 400, "verification_token_invalid")
        # a new address is not verified, and the old link does not verify it
        r = await client.put(
            PROFILE,
            json={"email": unique_email("verify-new"), "current_password": PASSWORD},
            headers=bearer(pair["access_token"]),
        )
        assert r.status_code == 200, r.text
        assert r.json()["email_verified"] is False
        r = await client.post(f"{AUTH}/verify-email", json={"token": token})
        assert_problem(r, 400, "verification_token_invalid")


async def test_a_changed_address_and_a_resend_get_a_link_of_their_own(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("reverify")
    async with _client(resources, app_factory, password_reset_email_limit=3) as client:
        pair = await register(client, email)
        auth = bearer(pair["access_token"])
        # the welcome's link is lost: ask again, the fresh link verifies the address
        r = await client.post(f"{AUTH}/verify-email/resend", headers=auth)
        assert r.status_code == 202, r.text
        assert r.json() == {"status": "sent"}
        (fresh,) = await _tokens(resources, email, "email_verification")
        r = await client.post(f"{AUTH}/verify-email", json={"token": fresh})
        assert r.status_code == 200, r.text
        r = await client.post(f"{AUTH}/verify-email/resend", headers=auth)
        assert r.json() == {"status": "already_verified"}  # nothing mailed
        assert len(await _tokens(resources, email, "email_verification")) == 1
        # a changed address is mailed its own link by the change itself
        new_email = unique_email("reverify-new")
        r = await client.put(
            PROFILE, json={"email": new_email, "current_password": PASSWORD}, headers=auth
        )
        assert r.status_code == 200, r.text
        assert r.json()["email_verified"] is False
        links = await _tokens(resources, new_email, "email_verification")
        assert len(links) == 2  # the account's: the resend above, then the new address's
        for_new = links[-1]
        r = await client.post(f"{AUTH}/verify-email", json={"token": fresh})
        assert_problem(r, 400, "verification_token_invalid")  # bound to the old address
        r = await client.post(f"{AUTH}/verify-email", json={"token": for_new})
        assert r.status_code == 200, r.text
        me = await client.get(PROFILE, headers=auth)
        assert me.json()["email_verified"] is True
        # the route is limited per account (it sends mail)
        answers = [
            (await client.post(f"{AUTH}/verify-email/resend", headers=auth)).status_code
            for _ in range(3)
        ]
        assert answers == [202, 429, 429]  # 3 per window: 2 used above, 1 left
        r = await client.post(f"{AUTH}/verify-email/resend")
        assert_problem(r, 401, "unauthorized")


async def test_tokens_are_bound_to_their_purpose(
    resources: Resources, app_factory: AppFactory, settings: Settings
) -> None:
    email = unique_email("purpose")
    async with _client(resources, app_factory) as client:
        await register(client, email)
        (welcome,) = await _tokens(resources, email, "account_welcome")
        r = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": welcome, "password": NEW_PASSWORD}
        )
        assert_problem(r, 400, "reset_token_invalid")
        await _reset(client, email)
        (reset,) = await _tokens(resources, email, "password_reset")
        r = await client.post(f"{AUTH}/verify-email", json={"token": reset})
        assert_problem(r, 400, "verification_token_invalid")
        # a token is a MAC with the server's key: the same row id under another key is no token
        other = settings.model_copy(update={"jwt_secret": "another-key-" + "x" * 40})
        async with resources.engine.connect() as conn:
            row_id = await conn.scalar(
                text("SELECT id FROM account_tokens WHERE token_hash = :h"),
                {"h": hash_refresh_token(reset)},
            )
        forged = account_tokens.token_for(other, "password_reset", row_id)
        r = await client.post(
            f"{AUTH}/password-reset/confirm", json={"token": forged, "password": NEW_PASSWORD}
        )
        assert_problem(r, 400, "reset_token_invalid")


async def test_prune_deletes_only_long_expired_account_tokens(
    resources: Resources, app_factory: AppFactory
) -> None:
    email = unique_email("prune")
    async with _client(resources, app_factory) as client:
        await register(client, email)
        await _reset(client, email)
    async with resources.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE account_tokens SET expires_at = now() - interval '2 days' "
                "WHERE email = :e AND purpose = 'password_reset'"
            ),
            {"e": email},
        )
    async with resources.sessionmaker() as session, session.begin():
        assert await account_tokens.prune_expired(session, grace_days=1) >= 1
    async with resources.engine.connect() as conn:
        left = await conn.execute(
            text("SELECT purpose FROM account_tokens WHERE email = :e"), {"e": email}
        )
        assert [r.purpose for r in left] == ["email_verification"]  # the live one is kept
