"""Access tokens: every forged, expired, wrong-type or malformed bearer token is a 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from evently.infra.resources import Resources
from evently.security import JWT_ALGORITHM, create_access_token
from tests.support.auth import PROFILE, bearer, register
from tests.support.problems import assert_problem


def _claims(user_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": "buyer",
        "type": "access",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _assert_refused(
    client: httpx.AsyncClient, token: str, code: str = "invalid_token"
) -> None:
    r = await client.get(PROFILE, headers=bearer(token))
    assert_problem(r, 401, code)
    assert r.headers["www-authenticate"] == "Bearer"


async def test_a_genuine_token_is_accepted(client: httpx.AsyncClient, resources: Resources) -> None:
    pair = await register(client)
    uid = uuid.UUID(pair["user"]["id"])
    token = jwt.encode(_claims(uid), resources.settings.jwt_secret, algorithm=JWT_ALGORITHM)
    r = await client.get(PROFILE, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(uid)


async def test_expired_token_is_401_token_expired(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    pair = await register(client)
    now = int(time.time())
    claims = _claims(uuid.UUID(pair["user"]["id"]), iat=now - 3600, exp=now - 60)
    token = jwt.encode(claims, resources.settings.jwt_secret, algorithm=JWT_ALGORITHM)
    await _assert_refused(client, token, "token_expired")


async def test_tampered_tokens_are_401(client: httpx.AsyncClient, resources: Resources) -> None:
    pair = await register(client)
    token = pair["access_token"]
    header, payload, signature = token.split(".")
    # payload edited to claim admin, old signature kept
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    await _assert_refused(client, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}")
    # signature bytes flipped
    sig = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    sig[0] ^= 0xFF
    await _assert_refused(client, f"{header}.{payload}.{_b64(bytes(sig))}")
    # signed with another secret
    other = jwt.encode(
        _claims(uuid.UUID(pair["user"]["id"])), "another-secret-" + "x" * 32, algorithm="HS256"
    )
    await _assert_refused(client, other)
    # garbage and truncated tokens
    for bad in ("garbage", f"{header}.{payload}", "a.b.c", token + "x", "." * 5000):
        await _assert_refused(client, bad)


@pytest.mark.filterwarnings("ignore:The HMAC key")
async def test_alg_none_and_other_algorithms_are_refused(
    client: httpx.AsyncClient, resources: Resources
) -> None:
    pair = await register(client)
    claims = _claims(uuid.UUID(pair["user"]["id"]))
    body = _b64(json.dumps(claims).encode())
    for alg in ("none", "None", "NONE"):
        head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        await _assert_refused(client, f"{head}.{body}.")
    # a valid HMAC, but with an algorithm we did not pin
    hs512 = jwt.encode(claims, resources.settings.jwt_secret, algorithm="HS512")
    await _assert_refused(client, hs512)


async def test_wrong_type_tokens_are_401(client: httpx.AsyncClient, resources: Resources) -> None:
    pair = await register(client)
    uid = uuid.UUID(pair["user"]["id"])
    secret = resources.settings.jwt_secret
    # a JWT of type refresh, correctly signed, is not an access token
    await _assert_refused(
        client, jwt.encode(_claims(uid, type="refresh"), secret, algorithm=JWT_ALGORITHM)
    )
    # the opaque refresh token is not a bearer token either
    await _assert_refused(client, pair["refresh_token"])


@pytest.mark.parametrize(
    "change",
    [
        {"sub": None},
        {"role": None},
        {"type": None},
        {"iat": None},
        {"exp": None},
        {"jti": None},
        {"sub": "not-a-uuid"},
        {"sub": str(uuid.UUID(int=0))},  # nobody
        {"exp": "tomorrow"},
        {"iat": int(time.time()) + 3600},  # issued in the future
    ],
)
async def test_missing_or_bad_claims_are_401(
    client: httpx.AsyncClient, resources: Resources, change: dict[str, Any]
) -> None:
    pair = await register(client)
    claims = _claims(uuid.UUID(pair["user"]["id"]), **change)
    if "sub" in change and change["sub"] is None:
        claims.pop("sub", None)
    token = jwt.encode(claims, resources.settings.jwt_secret, algorithm=JWT_ALGORITHM)
    await _assert_refused(client, token)


async def test_missing_or_wrong_scheme_authorization_is_401(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    for headers in (
        {},
        {"Authorization": ""},
        {"Authorization": pair["access_token"]},
        {"Authorization": f"Basic {pair['access_token']}"},
        {"Authorization": "Bearer"},
    ):
        r = await client.get(PROFILE, headers=headers)
        assert_problem(r, 401, "unauthorized")


async def test_tokens_issued_by_the_factory_are_the_same_kind(resources: Resources) -> None:
    """Access tokens are short-lived per the setting and carry exactly the checked claims."""
    uid = uuid.uuid4()
    token, expires = create_access_token(resources.settings, uid, "buyer")
    claims = jwt.decode(token, resources.settings.jwt_secret, algorithms=[JWT_ALGORITHM])
    assert set(claims) == {"sub", "role", "type", "iat", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == resources.settings.access_token_minutes * 60
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert int(expires.timestamp()) == claims["exp"]
