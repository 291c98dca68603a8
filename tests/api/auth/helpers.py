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


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    r = await client.post(
        f"{AUTH}/register", json={"email": email or unique_email("auth"), "password": password}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
