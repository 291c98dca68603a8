"""Access tokens: the per-process cache of verified tokens answers exactly as PyJWT would."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from evently import security
from evently.errors import InvalidToken, TokenExpired
from evently.settings import Settings


def test_a_cached_token_is_still_checked_for_expiry_and_secret(settings: Settings) -> None:
    user = uuid.uuid4()
    token, _ = security.create_access_token(settings, user, "user")
    first = security.decode_access_token(settings, token)
    assert first.user_id == user
    assert security.decode_access_token(settings, token) is first  # from the cache
    # the same token under another secret is not taken from the cache
    other = settings.model_copy(update={"jwt_secret": "another-secret-" + "x" * 32})
    with pytest.raises(InvalidToken):
        security.decode_access_token(other, token)
    # a remembered token whose time ran out is refused (and forgotten)
    key = (token, settings.jwt_secret)
    security._verified[key] = replace(first, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(TokenExpired):
        security.decode_access_token(settings, token)
    assert key not in security._verified


def test_only_genuine_tokens_are_remembered_and_the_cache_is_bounded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = jwt.encode({"sub": str(uuid.uuid4())}, "not-the-secret-" + "y" * 32, algorithm="HS256")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            security.decode_access_token(settings, forged)
    assert (forged, settings.jwt_secret) not in security._verified
    monkeypatch.setattr(security, "VERIFIED_MAX", 4)
    monkeypatch.setattr(security, "_verified", {})
    tokens = [security.create_access_token(settings, uuid.uuid4(), "user")[0] for _ in range(9)]
    for token in tokens:
        security.decode_access_token(settings, token)
    assert len(security._verified) <= 4
    assert (tokens[-1], settings.jwt_secret) in security._verified


def _sign(claims: dict[str, object], secret: str, **kw: object) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", **kw)  # type: ignore[arg-type]


def test_the_fast_check_accepts_only_what_pyjwt_accepts(settings: Settings) -> None:
    secret = settings.jwt_secret
    now = int(datetime.now(UTC).timestamp())
    good = {
        "sub": str(uuid.uuid4()),
        "role": "user",
        "type": "access",
        "iat": now,
        "exp": now + 600,
        "jti": "j",
    }
    issued, _ = security.create_access_token(settings, uuid.uuid4(), "user")
    head, payload, sig = issued.split(".")
    admin_payload = _sign({**good, "role": "admin"}, secret).split(".")[1]
    cases = {
        "issued": issued,
        "same claims": _sign(good, secret),
        "tampered payload": f"{head}.{admin_payload}.{sig}",
        "tampered signature": f"{head}.{payload}.{sig[:-2]}AA",
        "other secret": _sign(good, "another-secret-" + "z" * 32),
        "expired": _sign({**good, "exp": now - 5}, secret),
        "issued in the future": _sign({**good, "iat": now + 600}, secret),
        "extra claim": _sign({**good, "aud": "x"}, secret),
        "missing claim": _sign({k: v for k, v in good.items() if k != "jti"}, secret),
        "numeric subject": _sign({**good, "sub": 7}, secret),
        "float expiry": _sign({**good, "exp": now + 600.5}, secret),
        "other header": _sign(good, secret, headers={"kid": "1"}),
        "none alg": f"{jwt.encode(good, '', algorithm='none').rsplit('.', 1)[0]}.",
        "garbage": "a.b.c",
        "non-ascii": f"{head}.{payload}.é",
        "two parts": f"{head}.{payload}",
    }
    for name, token in cases.items():
        fast = security._issued_claims(secret, token)
        try:
            slow: object = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={"require": ["sub", "role", "type", "iat", "exp", "jti"]},
            )
        except jwt.PyJWTError:
            slow = None
        if fast is not None:  # the fast check may defer to PyJWT, never overrule it
            assert fast == slow, name
    assert security._issued_claims(secret, issued) is not None  # and it does its job
    assert security._issued_claims(secret, cases["same claims"]) is not None
