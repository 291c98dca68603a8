"""Password hashing (argon2id) and JWT access tokens (PyJWT, HS256 pinned)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from evently.errors import (
    InvalidToken,
    TokenExpired,
)
from evently.settings import Settings

JWT_ALGORITHM = "HS256"
ACCESS = "access"

# argon2id with the library defaults = RFC 9106's "second recommended" profile (t=3, m=64 MiB,
# p=4). Measured on the 2-core dev box: ~130 ms per verify, ~8 logins/s for the whole box;
# the login endpoint's p50 is the same ~130 ms for a right password, a wrong one and an
# unknown email (OWASP's minimum profile m=19 MiB, t=2, p=1 would be ~22 ms).
#
# ``EVENTLY_PASSWORD_HASH_PROFILE=fast`` (m=1 MiB, t=1, p=1; refused in production) exists for
# test servers that register and log in thousands of accounts; hashes made with either profile
# verify under both (argon2 hashes carry their parameters).
PROFILES = {
    "rfc9106": PasswordHasher(),
    "fast": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}
_hasher = PROFILES["rfc9106"]
# verifying against this when the email is unknown keeps login timing the same either way
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def use_password_profile(name: str) -> None:
    """Hash new passwords with this profile from now on (once, at process start)."""
    global _hasher, _DUMMY_HASH
    if PROFILES[name] is not _hasher:
        _hasher = PROFILES[name]
        _DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# argon2 is CPU- and memory-bound (64 MiB per hash) and releases the GIL: run it off the event
# loop, in a pool bounded by the CPU count so a login burst cannot exhaust memory or starve the
# default executor other code uses.
_argon2_pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_argon2_pool, hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """``verify_password`` off the event loop (unknown users cost the same, dummy hash)."""
    return await asyncio.get_running_loop().run_in_executor(
        _argon2_pool, verify_password, password_hash, password
    )


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    jti: str
    expires_at: datetime
    # the session (refresh-token family) the token was issued for; None for tokens minted
    # without one (tests, benchmarks): the storefront binds its CSRF token to it, and a live
    # stream ends when that session logs out (api/live/)
    session_id: str | None = None

    @property
    def family_id(self) -> uuid.UUID | None:
        """The session as the refresh-token family's id (checked to be a UUID when decoded)."""
        return uuid.UUID(self.session_id) if self.session_id is not None else None


def create_access_token(
    settings: Settings,
    user_id: uuid.UUID,
    role: str,
    *,
    session_id: uuid.UUID | None = None,
    issued_at: datetime | None = None,
    jti: str | None = None,
) -> tuple[str, datetime]:
    """A signed access token. ``issued_at`` and ``jti`` make it reproducible: a refresh retried
    within its grace window (evently/tokens.py) answers the very same pair."""
    now = (issued_at or datetime.now(UTC)).replace(microsecond=0)
    expires = now + timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "role": role,
        "type": ACCESS,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": jti or uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    return jwt.encode(claims, settings.jwt_secret, algorithm=JWT_ALGORITHM), expires


# Verified access tokens, by token string: a buyer's requests carry the same token for its
# whole life (join, every poll, the reserve), and PyJWT's decode (~70 us, a tenth of a waiting
# room answer's CPU) gives the same result for the same string and secret every time. Only
# successes are kept, at most VERIFIED_MAX (the oldest half goes when full: ~40 MB at worst);
# expiry is checked on every hit. Nothing else can change an access token's verdict: they are
# not revocable (a log-out revokes the refresh token; the access token lives out its minutes).
VERIFIED_MAX = 50_000
_verified: dict[tuple[str, str], AccessClaims] = {}


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    """The token's claims, when it is a genuine, unexpired access token (TokenExpired /
    InvalidToken otherwise)."""
    key = (token, settings.jwt_secret)
    found = _verified.get(key)
    if found is not None:
        if found.expires_at.timestamp() <= time.time():
            _verified.pop(key, None)
            raise TokenExpired("The access token has expired.")
        return found
    claims = _decode_access_token(settings, token)
    if len(_verified) >= VERIFIED_MAX:
        for old in list(_verified)[: VERIFIED_MAX // 2]:
            del _verified[old]
    _verified[key] = claims
    return claims


_ISSUED_CLAIMS = frozenset({"sub", "role", "type", "iat", "exp", "jti"})
_ISSUED_CLAIMS_WITH_SESSION = _ISSUED_CLAIMS | {"sid"}


@functools.cache
def _issued_header() -> str:
    """The header segment of every token this module issues (PyJWT's own encoding)."""
    return jwt.encode({}, "h" * 32, algorithm=JWT_ALGORITHM).split(".")[0]


@functools.lru_cache(maxsize=4)
def _mac(secret: str) -> hmac.HMAC:
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _issued_claims(secret: str, token: str) -> dict[str, Any] | None:
    """The claims of a token shaped exactly as ``create_access_token`` makes them (our header,
    our claim set, a valid HS256 signature, live by exp and iat); None for anything else,
    which PyJWT then decides (and names the refusal). ~8 us instead of PyJWT's ~70 us: a
    first request per buyer in a rush (20,000 joins) paid it on every one. Nothing is
    accepted here that PyJWT would refuse (tests/evently/test_security.py compares them)."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _issued_header():
        return None
    mac = _mac(secret).copy()
    mac.update(f"{parts[0]}.{parts[1]}".encode())
    try:
        signature, payload = _b64(parts[2]), _b64(parts[1])
    except ValueError:  # binascii.Error and non-ASCII input are ValueErrors
        return None
    if not hmac.compare_digest(mac.digest(), signature):
        return None
    try:
        claims = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(claims, dict) or (
        claims.keys() != _ISSUED_CLAIMS and claims.keys() != _ISSUED_CLAIMS_WITH_SESSION
    ):
        return None
    if type(claims.get("sid", "")) is not str:
        return None
    exp, iat, now = claims["exp"], claims["iat"], time.time()
    if type(exp) is not int or type(iat) is not int or exp <= now or iat > now:
        return None
    if type(claims["sub"]) is not str or type(claims["jti"]) is not str:  # as PyJWT insists
        return None
    return claims


def _decode_access_token(settings: Settings, token: str) -> AccessClaims:
    claims = _issued_claims(settings.jwt_secret, token)
    if claims is None:
        try:
            claims = jwt.decode(
                token,
                settings.jwt_secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["sub", "role", "type", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpired("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken("The access token is invalid.") from exc
    if claims.get("type") != ACCESS:
        raise InvalidToken("Not an access token.")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
        family_id = uuid.UUID(str(claims["sid"])) if "sid" in claims else None
    except ValueError as exc:
        raise InvalidToken("The access token is invalid.") from exc
    return AccessClaims(
        user_id=user_id,
        role=str(claims["role"]),
        jti=str(claims["jti"]),
        expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
        session_id=str(family_id) if family_id is not None else None,
    )


def access_token_session(secret: str, token: str) -> str | None:
    """The session id (``sid``) of a genuine access token, expired or not (the signature is
    checked, the expiry is not): what a page's CSRF token is bound to once its access token
    has lapsed. None for anything else."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            options={"verify_exp": False, "require": ["sub", "type", "exp"]},
        )
    except jwt.PyJWTError:
        return None
    sid = claims.get("sid")
    return sid if claims.get("type") == ACCESS and isinstance(sid, str) and sid else None


def new_refresh_token() -> tuple[str, str]:
    """An opaque refresh token and the SHA-256 hash we store (never the token itself)."""
    token = secrets.token_urlsafe(48)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
