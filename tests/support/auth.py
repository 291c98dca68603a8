"""Auth through the API: register, bearer headers, the paths and a long-enough password."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import unique_email

PASSWORD = "a-long-enough-password"
AUTH = "/api/v1/auth"
PROFILE = "/api/v1/users/profile"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    r = await client.post(
        f"{AUTH}/register", json={"email": email or unique_email("auth"), "password": password}
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
