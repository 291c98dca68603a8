"""Ticket secrets a door scanner can check offline with the platform's public key alone.

A secret is ``EVT1.`` followed by RFC 4648 base32 (upper case, no padding) of::

    offset size  field
    0      1     format version (1)
    1      1     flags (bit 0: a ticket type id follows the issue time)
    2      16    ticket id (UUID bytes)
    18     16    event id (UUID bytes)
    34     4     seat number, unsigned big-endian (0 .. 2**32-1)
    38     4     issued at, unix seconds, unsigned big-endian
    42     16    ticket type id (only when flags bit 0 is set)
    ..     64    Ed25519 signature over CONTEXT + every byte above

Base32 rather than base64url: every character of the secret (``A-Z``, ``2-7``, ``.``) is in
the QR alphanumeric set (5.5 bits a character against 8 in byte mode), which makes the QR
one version smaller at the same error correction: 175 characters, version 7 (45x45 modules)
at level M for a ticket without a type, 201 characters, version 8 at level M with one.
The text is also case-insensitive, so a hand-typed or lower-cased secret still verifies.

Ed25519 signatures are deterministic: the same claims and key always give the same secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PREFIX = "EVT1."
VERSION = 1
#: Domain separation: a signature made by this key for anything else never verifies as a ticket.
CONTEXT = b"evently/ticket/v1\x00"

_FLAG_TICKET_TYPE = 0x01
_HEADER = struct.Struct(">BB16s16sII")
_UUID_LEN = 16
_SIG_LEN = 64
_MAX_U32 = 2**32 - 1


class InvalidTicket(ValueError):
    """The secret is malformed, tampered with, or not signed by a trusted key."""


@dataclass(frozen=True, slots=True)
class TicketClaims:
    """What a ticket secret asserts. ``issued_at`` is kept to whole seconds, in UTC."""

    ticket_id: uuid.UUID
    event_id: uuid.UUID
    seat: int
    issued_at: datetime
    ticket_type_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seat <= _MAX_U32:
            raise ValueError(f"seat must be in 0..{_MAX_U32}, got {self.seat}")
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        ts = int(self.issued_at.timestamp())
        if not 0 <= ts <= _MAX_U32:
            raise ValueError("issued_at is outside 1970..2106")
        # normalise so that verify(sign(c)) == c
        object.__setattr__(self, "issued_at", datetime.fromtimestamp(ts, UTC))


def _payload(claims: TicketClaims) -> bytes:
    flags = _FLAG_TICKET_TYPE if claims.ticket_type_id is not None else 0
    head = _HEADER.pack(
        VERSION,
        flags,
        claims.ticket_id.bytes,
        claims.event_id.bytes,
        claims.seat,
        int(claims.issued_at.timestamp()),
    )
    if claims.ticket_type_id is not None:
        head += claims.ticket_type_id.bytes
    return head


def _b32encode(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _b32decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 8)
    try:
        data = base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTicket("ticket secret is not valid base32") from exc
    # refuse non-canonical spellings (stray low bits in the last character)
    if _b32encode(data) != text:
        raise InvalidTicket("ticket secret is not canonically encoded")
    return data


def sign_ticket(private_key: Ed25519PrivateKey, claims: TicketClaims) -> str:
    """The ticket's secret: the QR payload, the text a scanner verifies."""
    payload = _payload(claims)
    signature = private_key.sign(CONTEXT + payload)
    return PREFIX + _b32encode(payload + signature)


def decode_ticket_unverified(secret: str) -> TicketClaims:
    """Parse a secret WITHOUT checking its signature (for logs and support tools only)."""
    claims, _, _ = _parse(secret)
    return claims


def _parse(secret: str) -> tuple[TicketClaims, bytes, bytes]:
    if not isinstance(secret, str):
        raise InvalidTicket("ticket secret must be text")
    text = secret.strip().upper()
    if not text.startswith(PREFIX):
        raise InvalidTicket("not an Evently ticket (unknown prefix)")
    raw = _b32decode(text[len(PREFIX) :])
    if len(raw) < _HEADER.size + _SIG_LEN:
        raise InvalidTicket("ticket secret is truncated")
    version, flags, ticket_id, event_id, seat, issued = _HEADER.unpack_from(raw)
    if version != VERSION:
        raise InvalidTicket(f"unsupported ticket format version {version}")
    if flags & ~_FLAG_TICKET_TYPE:
        raise InvalidTicket("unknown ticket flags")
    body_len = _HEADER.size + (_UUID_LEN if flags & _FLAG_TICKET_TYPE else 0)
    if len(raw) != body_len + _SIG_LEN:
        raise InvalidTicket("ticket secret has the wrong length")
    ticket_type_id = (
        uuid.UUID(bytes=raw[_HEADER.size : body_len]) if flags & _FLAG_TICKET_TYPE else None
    )
    claims = TicketClaims(
        ticket_id=uuid.UUID(bytes=ticket_id),
        event_id=uuid.UUID(bytes=event_id),
        seat=seat,
        issued_at=datetime.fromtimestamp(issued, UTC),
        ticket_type_id=ticket_type_id,
    )
    return claims, raw[:body_len], raw[body_len:]


def verify_ticket(
    public_key: Ed25519PublicKey | Iterable[Ed25519PublicKey], secret: str
) -> TicketClaims:
    """Check a secret offline and return its claims; raise ``InvalidTicket`` otherwise.

    Pass several public keys while a signing key is being rotated: any one of them may match.
    This only proves the platform issued the ticket; whether it is still valid (not revoked,
    not already admitted) is the check-in service's question.
    """
    claims, payload, signature = _parse(secret)
    keys = [public_key] if isinstance(public_key, Ed25519PublicKey) else list(public_key)
    for key in keys:
        try:
            key.verify(signature, CONTEXT + payload)
        except InvalidSignature:
            continue
        return claims
    raise InvalidTicket("ticket signature does not verify")


# --- keys -------------------------------------------------------------------------------------


def generate_keypair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    """A fresh key pair (development, tests, ``evently tickets keygen``)."""
    private_key = Ed25519PrivateKey.generate()
    return private_key, private_key.public_key()


def _b64decode_any(text: str) -> bytes:
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("key is neither PEM nor base64") from exc


def load_private_key(value: str | bytes) -> Ed25519PrivateKey:
    """The signing key from a setting: an unencrypted PKCS#8 PEM, or base64 of the 32-byte seed."""
    text = value.decode("ascii") if isinstance(value, bytes) else value
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the PEM key is not an Ed25519 private key")
        return key
    raw = _b64decode_any(text)
    if len(raw) != 32:
        raise ValueError(f"a raw Ed25519 private key is 32 bytes, got {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(value: str | bytes) -> Ed25519PublicKey:
    """A scanner's key: a SubjectPublicKeyInfo PEM, or base64 of the 32 raw bytes."""
    text = value.decode("ascii") if isinstance(value, bytes) else value
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(text.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    raw = _b64decode_any(text)
    if len(raw) != 32:
        raise ValueError(f"a raw Ed25519 public key is 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def private_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw).decode("ascii")


def private_key_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint to tell keys apart in logs and scanner configs (not a secret)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
