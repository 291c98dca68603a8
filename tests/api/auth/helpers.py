"""Small helpers shared by the auth tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import unique_email

PASSWORD = "a-long-enough-password"
AUTH = "/api/v1/auth"
PROFILE = "/api/v1/users/profile"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


SIGN_UP_ANSWER = {
    "status": "accepted",
    "detail": "Check your email to finish signing up. You can log in with your email and password.",
}


async def sign_up(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    """``POST /auth/register``: 202 and the one answer, whether the email was new or taken."""
    r = await client.post(f"{AUTH}/register", json={"email": email, "password": password, **extra})
    assert r.status_code == 202, r.text
    assert r.json() == SIGN_UP_ANSWER
    assert "refresh_token" not in r.text
    return r


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = await client.post(f"{AUTH}/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """Sign up (202, no tokens), then log in: the new account's token pair."""
    email = email or unique_email("auth")
    await sign_up(client, email, password)
    return await log_in(client, email, password)
