"""Hypothesis over the auth and profile endpoints: hostile bodies never cause a 500.

Arbitrary JSON (wrong types, nesting, huge and odd strings, near-valid bodies) and raw bytes go
to every endpoint; each answer must be < 500 and, when 4xx, RFC 9457 problem+json with a code.
"""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evently.infra.resources import Resources
from tests.support.auth import AUTH, PROFILE
from tests.support.factories import Account, make_account

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
    | st.sampled_from(["", " ", "\x00", "a" * 5000, "é@ü.de", "@", "a@b", "null", "\ud7ff"])
)
_json = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4)
    ),
    max_leaves=12,
)
_emails = st.sampled_from(["fuzz@example.com", "FUZZ@EXAMPLE.COM", "x@y", "no-at-sign", ""]) | (
    st.text(max_size=30).map(lambda s: f"{s}@example.com")
)
_passwords = st.text(max_size=40) | st.sampled_from(["", "a" * 1025, "fuzz@example.com"])


def _near_valid(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Bodies shaped like the real one: each known field mostly right-ish, sometimes wrong-typed
    or missing, and now and then an unknown extra field (refused: the schemas forbid extras)."""
    shaped = st.fixed_dictionaries(
        {}, optional={k: st.one_of(v, v, _json) for k, v in fields.items()}
    )
    extras = st.one_of(
        st.just({}),
        st.just({}),
        st.just({}),
        st.dictionaries(st.text(max_size=8), _json, max_size=2),
    )
    return st.tuples(shaped, extras).map(lambda t: {**t[1], **t[0]})


_bodies = {
    "register": _near_valid({"email": _emails, "password": _passwords, "full_name": st.text()}),
    "login": _near_valid({"email": _emails, "password": _passwords}),
    "refresh": _near_valid({"refresh_token": st.text(max_size=80)}),
    "logout": _near_valid({"refresh_token": st.text(max_size=80)}),
    "profile": _near_valid(
        {
            "full_name": st.text(max_size=220),
            "email": _emails,
            "new_password": _passwords,
            "current_password": _passwords,
        }
    ),
}


_ACCOUNTS: dict[str, Account] = {}


def _check(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), r.text
        body = r.json()
        assert body["status"] == r.status_code
        assert isinstance(body["code"], str)
        assert body["code"]


async def _send(
    client: httpx.AsyncClient, name: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    if name == "profile":
        return await client.put(PROFILE, json=body, headers=headers)
    return await client.post(f"{AUTH}/{name}", json=body, headers=headers)


@settings(FUZZ, max_examples=100)
@given(data=st.data())
async def test_arbitrary_json_to_auth_endpoints_never_500(
    client: httpx.AsyncClient, resources: Resources, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(sorted(_bodies)), label="endpoint")
    body = data.draw(st.one_of(_bodies[name], _bodies[name], _json), label="body")
    headers = None
    if name == "profile":
        # a real buyer (one for the whole run: argon2 makes accounts slow to create), so fuzzed
        # profile changes reach the service, not just the auth check
        if "profile" not in _ACCOUNTS:
            _ACCOUNTS["profile"] = await make_account(resources, "buyer")
        headers = _ACCOUNTS["profile"].headers
    _check(await _send(client, name, body, headers))


@FUZZ
@given(raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
async def test_raw_bytes_to_auth_endpoints_never_500(client: httpx.AsyncClient, raw: bytes) -> None:
    for name in ("register", "login", "refresh", "logout"):
        r = await client.post(
            f"{AUTH}/{name}", content=raw, headers={"content-type": "application/json"}
        )
        _check(r)


@FUZZ
@given(token=st.text(max_size=300) | st.binary(max_size=200).map(lambda b: b.hex()))
async def test_arbitrary_bearer_tokens_are_401(client: httpx.AsyncClient, token: str) -> None:
    # raw header bytes (UTF-8, control characters and all): what a hostile client can send
    headers = [(b"authorization", b"Bearer " + token.encode("utf-8"))]
    r = await client.get(PROFILE, headers=headers)
    _check(r)
    assert r.status_code == 401
