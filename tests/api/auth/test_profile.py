"""GET and PUT /users/profile."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from evently.db.models import User
from evently.infra.resources import Resources
from tests.api.auth.helpers import AUTH, PASSWORD, PROFILE, assert_problem, bearer, register
from tests.factories import unique_email


async def _stored(res: Resources, user_id: str) -> User:
    async with res.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.id == uuid.UUID(user_id)))
    assert user is not None
    return user


async def test_get_profile_shows_only_safe_fields(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    r = await client.get(PROFILE, headers=bearer(pair["access_token"]))
    assert r.status_code == 200
    # email_verified: issue 32 (whether the address was proven), no secret
    assert set(r.json()) == {"id", "email", "full_name", "role", "created_at", "email_verified"}
    assert_problem(await client.get(PROFILE), 401, "unauthorized")


async def test_change_full_name(client: httpx.AsyncClient, resources: Resources) -> None:
    pair = await register(client)
    h = bearer(pair["access_token"])
    r = await client.put(PROFILE, json={"full_name": "  Grace Hopper "}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["full_name"] == "Grace Hopper"
    assert r.json()["email"] == pair["user"]["email"]
    assert (await client.get(PROFILE, headers=h)).json()["full_name"] == "Grace Hopper"
    for bad in ("x" * 201, "tab\there", 42, ["a"]):
        assert_problem(await client.put(PROFILE, json={"full_name": bad}, headers=h), 422)
    assert_problem(await client.put(PROFILE, json={"role": "admin"}, headers=h), 422)
    assert (await _stored(resources, pair["user"]["id"])).role == "buyer"


async def test_password_change_needs_the_current_password_and_signs_out_everywhere(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    email = unique_email("pw")
    pair = await register(client, email)
    h = bearer(pair["access_token"])
    new = "a-brand-new-passphrase"
    before = (await _stored(resources, pair["user"]["id"])).password_hash

    r = await client.put(PROFILE, json={"new_password": new}, headers=h)
    assert_problem(r, 422, "current_password_required")
    r = await client.put(
        PROFILE, json={"new_password": new, "current_password": "wrong-password!"}, headers=h
    )
    assert_problem(r, 403, "wrong_password")
    r = await client.put(
        PROFILE, json={"new_password": "short", "current_password": PASSWORD}, headers=h
    )
    assert_problem(r, 422, "weak_password")
    r = await client.put(
        PROFILE, json={"new_password": email, "current_password": PASSWORD}, headers=h
    )
    assert_problem(r, 422, "weak_password")
    assert (await _stored(resources, pair["user"]["id"])).password_hash == before

    r = await client.put(
        PROFILE, json={"new_password": new, "current_password": PASSWORD}, headers=h
    )
    assert r.status_code == 200, r.text
    old = await client.post(f"{AUTH}/login", json={"email": email, "password": PASSWORD})
    assert_problem(old, 401, "invalid_credentials")
    ok = await client.post(f"{AUTH}/login", json={"email": email, "password": new})
    assert ok.status_code == 200
    # sessions from before the change are gone
    r = await client.post(f"{AUTH}/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(r, 401, "token_revoked")


async def test_email_change_is_validated_and_unique_case_insensitively(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    taken = unique_email("taken")
    await register(client, taken)
    pair = await register(client)
    h = bearer(pair["access_token"])

    r = await client.put(PROFILE, json={"email": unique_email("new")}, headers=h)
    assert_problem(r, 422, "current_password_required")
    r = await client.put(PROFILE, json={"email": "nope", "current_password": PASSWORD}, headers=h)
    assert_problem(r, 422, "invalid_email")
    r = await client.put(
        PROFILE, json={"email": taken.upper(), "current_password": PASSWORD}, headers=h
    )
    assert_problem(r, 409, "email_taken")
    assert (await _stored(resources, pair["user"]["id"])).email == pair["user"]["email"]

    new = unique_email("Moved")
    r = await client.put(PROFILE, json={"email": new, "current_password": PASSWORD}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["email"] == new.lower()
    ok = await client.post(f"{AUTH}/login", json={"email": new, "password": PASSWORD})
    assert ok.status_code == 200
    old = await client.post(
        f"{AUTH}/login", json={"email": pair["user"]["email"], "password": PASSWORD}
    )
    assert_problem(old, 401, "invalid_credentials")
    # the same address again (any case) is a no-op, not a conflict with oneself
    r = await client.put(PROFILE, json={"email": new.upper()}, headers=h)
    assert r.status_code == 200, r.text
