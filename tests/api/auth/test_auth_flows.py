"""Register, login, refresh rotation and reuse detection, logout — against real Postgres/Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text, update

from evently.db.models import RefreshToken, User
from evently.infra.resources import Resources
from evently.security import hash_refresh_token
from evently.settings import Settings
from tests.api.auth.helpers import (
    AUTH,
    PASSWORD,
    PROFILE,
    SIGN_UP_ANSWER,
    assert_problem,
    bearer,
    log_in,
    register,
    sign_up,
)
from tests.factories import unique_email


async def _user_count(res: Resources, email: str) -> int:
    async with res.sessionmaker() as session:
        n = await session.scalar(
            select(func.count()).select_from(User).where(func.lower(User.email) == email.lower())
        )
    return int(n or 0)


async def test_sign_up_then_log_in_gives_a_working_token_pair_for_a_buyer(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("Reg").replace("Reg", "ReG")
    await sign_up(client, email, full_name="Ada L")  # 202, no tokens
    body = await log_in(client, email)  # the new account logs in at once
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == resources.settings.access_token_minutes * 60
    assert body["refresh_expires_in"] == resources.settings.refresh_token_days * 86400
    assert body["user"]["role"] == "buyer"
    assert body["user"]["email"] == email.lower()
    assert body["user"]["full_name"] == "Ada L"
    assert uuid.UUID(body["user"]["id"])

    me = await client.get(PROFILE, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == body["user"]["id"]

    # stored: an argon2id hash (never the password) and a SHA-256 of the refresh token
    async with resources.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(body["user"]["id"]))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        stored = await session.scalar(select(RefreshToken).where(RefreshToken.user_id == user.id))
        assert stored is not None
        assert stored.token_hash == hash_refresh_token(body["refresh_token"])
        assert body["refresh_token"] not in stored.token_hash


async def test_register_refuses_a_role_field(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("role")
    r = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD, "role": "admin"}
    )
    body = assert_problem(r, 422, "validation_error")
    assert "role" in body["detail"]
    assert await _user_count(resources, email) == 0


async def _notices(resources: Resources, email: str) -> list[tuple[str, str]]:
    async with resources.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT n.kind, n.mail_status FROM notifications n JOIN users u ON u.id = n.user_id"
                " WHERE lower(u.email) = lower(:e) ORDER BY n.created_at"
            ),
            {"e": email},
        )
        return [(r.kind, r.mail_status) for r in rows]


async def test_a_taken_email_gets_the_same_answer_and_changes_nothing_whatever_the_case(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("dup")
    first = await sign_up(client, email)
    original = await log_in(client, email)
    for variant in (email, email.upper(), f"  {email.capitalize()} "):
        again = await sign_up(client, variant, "another-long-password", full_name="Mallory")
        assert again.json() == first.json()
        assert again.headers.get("content-length") == first.headers.get("content-length")
    assert await _user_count(resources, email) == 1
    # the account is untouched: its password and name, and its session, still work
    pair = await log_in(client, email)
    assert pair["user"] == original["user"]
    wrong = await client.post(
        f"{AUTH}/login", json={"email": email, "password": "another-long-password"}
    )
    assert_problem(wrong, 401, "invalid_credentials")  # as any wrong password
    # the address's owner learns it by mail: one welcome, then "you already have an account"
    # (at most one an hour)
    assert [k for k, _ in await _notices(resources, email)] == [
        "account_welcome",
        "account_exists",
    ]


async def test_concurrent_registrations_of_one_email_make_one_account(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("race")
    results = await asyncio.gather(
        *(
            client.post(f"{AUTH}/register", json={"email": v, "password": PASSWORD})
            for v in (email, email.upper(), email.title())
        )
    )
    assert [r.status_code for r in results] == [202, 202, 202], [r.text for r in results]
    assert all(r.json() == SIGN_UP_ANSWER for r in results)
    assert await _user_count(resources, email) == 1
    kinds = sorted(k for k, _ in await _notices(resources, email))
    assert kinds == ["account_exists", "account_welcome"], kinds


async def test_malformed_email_and_weak_passwords_are_422_with_clear_messages(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    for bad in ("not-an-email", "a@", "@example.com", "a b@example.com", "x@localhost"):
        r = await client.post(f"{AUTH}/register", json={"email": bad, "password": PASSWORD})
        body = assert_problem(r, 422, "invalid_email")
        assert body["detail"].startswith("email:")

    email = unique_email("weak")
    r = await client.post(f"{AUTH}/register", json={"email": email, "password": "short"})
    body = assert_problem(r, 422, "weak_password")
    assert "at least 10 characters" in body["detail"]
    r = await client.post(f"{AUTH}/register", json={"email": email, "password": email.upper()})
    body = assert_problem(r, 422, "weak_password")
    assert "email" in body["detail"]
    assert await _user_count(resources, email) == 0

    r = await client.post(f"{AUTH}/register", json={"email": email})
    assert_problem(r, 422, "validation_error")
    r = await client.post(f"{AUTH}/register", json={"email": email, "password": 1234567890123})
    assert_problem(r, 422, "validation_error")
    r = await client.post(
        f"{AUTH}/register",
        content=b'{"email": "' + email.encode() + b'", "password": "\\ud800xxxxxxxxxxx"}',
        headers={"content-type": "application/json"},
    )
    assert_problem(r, 422, "validation_error")
    r = await client.post(
        f"{AUTH}/register", json={"email": email, "password": PASSWORD, "full_name": "a\x00b"}
    )
    assert_problem(r, 422, "validation_error")
    assert await _user_count(resources, email) == 0


async def test_login_happy_path_case_insensitive_email(client: httpx.AsyncClient) -> None:
    email = unique_email("login")
    await register(client, email)
    r = await client.post(f"{AUTH}/login", json={"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["email"] == email
    assert body["refresh_token"]
    assert body["access_token"]
    me = await client.get(PROFILE, headers=bearer(body["access_token"]))
    assert me.status_code == 200


async def test_wrong_password_and_unknown_email_answer_identically(
    client: httpx.AsyncClient,
) -> None:
    email = unique_email("enum")
    await register(client, email)
    wrong = await client.post(f"{AUTH}/login", json={"email": email, "password": "x" * 12})
    unknown = await client.post(
        f"{AUTH}/login", json={"email": unique_email("nobody"), "password": PASSWORD}
    )
    a = assert_problem(wrong, 401, "invalid_credentials")
    b = assert_problem(unknown, 401, "invalid_credentials")
    assert a == b
    assert wrong.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")


async def test_disabled_account_cannot_log_in_or_use_its_tokens(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("off")
    tokens = await register(client, email)
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(update(User).where(User.email == email).values(is_active=False))
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert_problem(r, 401, "invalid_credentials")
    assert_problem(await client.get(PROFILE, headers=bearer(tokens["access_token"])), 401)
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(r, 401, "invalid_token")


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    first = await register(client)
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["user"]["id"] == first["user"]["id"]
    assert (await client.get(PROFILE, headers=bearer(second["access_token"]))).status_code == 200

    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status_code == 200, r.text
    third = r.json()

    # a stolen copy of the first token comes back: 401, and the family dies — newest included
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert_problem(r, 401, "token_reused")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": third["refresh_token"]})
    assert_problem(r, 401, "token_revoked")

    async with resources.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(RefreshToken).where(RefreshToken.user_id == uuid.UUID(first["user"]["id"]))
            )
        ).all()
    assert len(rows) == 3
    assert len({row.family_id for row in rows}) == 1
    assert all(row.revoked_at is not None for row in rows)


async def _age_rotation(resources: Resources, token: str, seconds: int = 60) -> None:
    """Move a token's rotation ``seconds`` into the past (past the grace window)."""
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE refresh_tokens SET rotated_at = rotated_at - make_interval(secs => :s) "
                "WHERE token_hash = :h"
            ),
            {"h": hash_refresh_token(token), "s": seconds},
        )


async def test_reuse_only_revokes_its_own_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("fam")
    phone = await register(client, email)
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    laptop = r.json()
    await client.post(f"{AUTH}/refresh", json={"refresh_token": phone["refresh_token"]})
    await _age_rotation(resources, phone["refresh_token"])  # beyond the grace window
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": phone["refresh_token"]})
    assert_problem(r, 401, "token_reused")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": laptop["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_concurrent_refreshes_in_the_grace_window_get_one_pair_and_the_session_lives(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    """Two tabs refresh with one token at once: both get the very same new pair (the token is
    spent once, its successor handed to both), no theft alarm; the session goes on."""
    pair = await register(client)
    user_id = uuid.UUID(pair["user"]["id"])
    results = await asyncio.gather(
        *(
            client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
            for _ in range(6)
        )
    )
    assert [r.status_code for r in results] == [200] * 6, [r.text for r in results]
    answers = [r.json() for r in results]
    assert all(a == answers[0] for a in answers)  # the same refresh AND access token
    new = answers[0]
    assert new["refresh_token"] != pair["refresh_token"]
    assert (await client.get(PROFILE, headers=bearer(new["access_token"]))).status_code == 200

    async def tokens_of_user() -> list[RefreshToken]:
        async with resources.sessionmaker() as session:
            rows = await session.scalars(
                select(RefreshToken).where(RefreshToken.user_id == user_id)
            )
            return list(rows.all())

    rows = await tokens_of_user()
    assert len(rows) == 2  # one successor, not six
    assert all(row.revoked_at is None for row in rows)
    # the session lives: its new token refreshes again
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": new["refresh_token"]})
    assert r.status_code == 200, r.text
    newest = r.json()
    # the first token once more, now that its successor is spent: reuse, the family is revoked
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(r, 401, "token_reused")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": newest["refresh_token"]})
    assert_problem(r, 401, "token_revoked")


async def test_reuse_after_the_grace_window_revokes_the_family(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    pair = await register(client)
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    new = r.json()
    again = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200  # within the window: a retry, the same pair
    assert again.json() == new
    await _age_rotation(resources, pair["refresh_token"])  # 60 s ago: past the 10 s window
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(r, 401, "token_reused")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": new["refresh_token"]})
    assert_problem(r, 401, "token_revoked")
    async with resources.sessionmaker() as session:
        live = await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(
                RefreshToken.user_id == uuid.UUID(pair["user"]["id"]),
                RefreshToken.revoked_at.is_(None),
            )
        )
    assert live == 0


async def test_a_grace_retry_after_log_out_is_refused(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    new = r.json()
    await client.post(f"{AUTH}/logout", json={"refresh_token": new["refresh_token"]})
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(r, 401)


async def test_expired_unknown_and_malformed_refresh_tokens_are_401(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    pair = await register(client)
    async with resources.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                "WHERE token_hash = :h"
            ),
            {"h": hash_refresh_token(pair["refresh_token"])},
        )
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(r, 401, "token_expired")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": "x" * 64})
    assert_problem(r, 401, "invalid_token")
    # an access token is not a refresh token
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["access_token"]})
    assert_problem(r, 401, "invalid_token")
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": "y" * 100_000})
    assert_problem(r, 422, "validation_error")
    r = await client.post(f"{AUTH}/refresh", json={})
    assert_problem(r, 422, "validation_error")


async def test_logout_revokes_the_session_and_is_idempotent(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("bye")
    pair = await register(client, email)
    other = (await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})).json()
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    newest = r.json()

    r = await client.post(f"{AUTH}/logout", json={"refresh_token": newest["refresh_token"]})
    assert r.status_code == 204
    assert r.content == b""
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": newest["refresh_token"]})
    assert_problem(r, 401, "token_revoked")
    again = await client.post(f"{AUTH}/logout", json={"refresh_token": newest["refresh_token"]})
    assert again.status_code == 204
    unknown = await client.post(f"{AUTH}/logout", json={"refresh_token": "nope"})
    assert unknown.status_code == 204
    assert_problem(await client.post(f"{AUTH}/logout", json={"token": "x"}), 422)
    # the other session (another login) is untouched
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_prune_tokens_deletes_only_long_expired_ones(
    resources: Resources, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    user_id = uuid.uuid4()
    hashes = {name: hash_refresh_token(f"{name}-{user_id}") for name in ("old", "recent", "live")}
    async with resources.sessionmaker() as session, session.begin():
        session.add(User(id=user_id, email=unique_email("prune"), password_hash="x"))
        await session.flush()
        for name, expires in (
            ("old", timedelta(days=-3)),
            ("recent", timedelta(hours=-1)),
            ("live", timedelta(days=7)),
        ):
            await session.execute(
                text(
                    "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)"
                    " VALUES (gen_random_uuid(), :u, gen_random_uuid(), :h,"
                    " now() + :e)"
                ),
                {"u": user_id, "h": hashes[name], "e": expires},
            )

    monkeypatch.setenv("EVENTLY_DATABASE_URL", settings.database_url or "")
    # the command runs its own event loop: give it a thread
    out = await asyncio.to_thread(CliRunner().invoke, app, ["users", "prune-tokens"])
    assert out.exit_code == 0, out.output
    async with resources.sessionmaker() as session:
        left = set(
            await session.scalars(
                select(RefreshToken.token_hash).where(RefreshToken.user_id == user_id)
            )
        )
    assert {name for name, h in hashes.items() if h in left} == {"recent", "live"}
