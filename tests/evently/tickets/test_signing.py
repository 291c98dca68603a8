"""Ticket secrets: what a scanner holding only the public key accepts and refuses."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from evently.settings import DEV_TICKET_SIGNING_KEY
from evently.tickets.signing import (
    PREFIX,
    InvalidTicket,
    TicketClaims,
    decode_ticket_unverified,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    private_key_b64,
    private_key_pem,
    public_key_b64,
    public_key_pem,
    sign_ticket,
    verify_ticket,
)


def b32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def make_claims(*, with_type: bool = False) -> TicketClaims:
    return TicketClaims(
        ticket_id=uuid.uuid4(),
        event_id=uuid.uuid4(),
        seat=1234,
        issued_at=datetime(2026, 11, 27, 18, 30, 15, 999_000, tzinfo=UTC),
        ticket_type_id=uuid.uuid4() if with_type else None,
    )


@pytest.mark.parametrize("with_type", [False, True])
def test_round_trip(with_type: bool) -> None:
    private, public = generate_keypair()
    claims = make_claims(with_type=with_type)
    secret = sign_ticket(private, claims)

    assert secret.startswith(PREFIX)
    assert len(secret) == (201 if with_type else 175)
    got = verify_ticket(public, secret)
    assert got == claims
    assert got.issued_at == datetime(2026, 11, 27, 18, 30, 15, tzinfo=UTC)  # whole seconds
    assert decode_ticket_unverified(secret) == claims


def test_signing_is_deterministic_and_case_insensitive() -> None:
    private, public = generate_keypair()
    claims = make_claims()
    secret = sign_ticket(private, claims)
    assert sign_ticket(private, claims) == secret
    assert verify_ticket(public, f"  {secret.lower()}\n") == claims


def test_every_flipped_byte_fails() -> None:
    private, public = generate_keypair()
    secret = sign_ticket(private, make_claims(with_type=True))
    raw = b32(secret[len(PREFIX) :])
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 0x01
        text = PREFIX + base64.b32encode(bytes(tampered)).decode().rstrip("=")
        with pytest.raises(InvalidTicket):
            verify_ticket(public, text)


def test_a_changed_character_fails() -> None:
    private, public = generate_keypair()
    secret = sign_ticket(private, make_claims())
    i = len(PREFIX) + 20
    changed = secret[:i] + ("A" if secret[i] != "A" else "B") + secret[i + 1 :]
    with pytest.raises(InvalidTicket):
        verify_ticket(public, changed)


def test_signed_by_another_key_fails() -> None:
    private, _ = generate_keypair()
    _, other_public = generate_keypair()
    secret = sign_ticket(private, make_claims())
    with pytest.raises(InvalidTicket, match="signature"):
        verify_ticket(other_public, secret)


def test_any_of_several_keys_verifies_during_rotation() -> None:
    old_private, old_public = generate_keypair()
    _, new_public = generate_keypair()
    claims = make_claims()
    assert verify_ticket([new_public, old_public], sign_ticket(old_private, claims)) == claims
    with pytest.raises(InvalidTicket):
        verify_ticket([], sign_ticket(old_private, claims))


@pytest.mark.parametrize("cut", [1, 2, 8, 64, 100, 170])
def test_truncated_secret_fails(cut: int) -> None:
    private, public = generate_keypair()
    secret = sign_ticket(private, make_claims())
    with pytest.raises(InvalidTicket):
        verify_ticket(public, secret[:-cut])


@pytest.mark.parametrize(
    "junk",
    ["", "EVT1.", "EVT2." + "A" * 170, "hello", "EVT1.!!!!", "EVT1." + "A" * 171, "EVT1.AAAAAAAB"],
)
def test_garbage_is_invalid_not_a_crash(junk: str) -> None:
    _, public = generate_keypair()
    with pytest.raises(InvalidTicket):
        verify_ticket(public, junk)


def test_a_signature_for_another_purpose_is_not_a_ticket() -> None:
    private, public = generate_keypair()
    secret = sign_ticket(private, make_claims())
    raw = b32(secret[len(PREFIX) :])
    payload = raw[:-64]
    forged = payload + private.sign(payload)  # same key, no ticket context
    text = PREFIX + base64.b32encode(forged).decode().rstrip("=")
    with pytest.raises(InvalidTicket):
        verify_ticket(public, text)


def test_claims_are_validated() -> None:
    with pytest.raises(ValueError, match="seat"):
        TicketClaims(uuid.uuid4(), uuid.uuid4(), -1, datetime.now(UTC))
    with pytest.raises(ValueError, match="timezone"):
        TicketClaims(uuid.uuid4(), uuid.uuid4(), 1, datetime(2026, 1, 1))


def test_keys_load_from_pem_and_base64() -> None:
    private, public = generate_keypair()
    claims = make_claims()
    secret = sign_ticket(private, claims)

    for text in (private_key_pem(private), private_key_b64(private)):
        assert sign_ticket(load_private_key(text), claims) == secret
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(private_key_b64(private))).decode()
    assert sign_ticket(load_private_key(urlsafe.rstrip("=")), claims) == secret

    for text in (public_key_pem(public), public_key_b64(public)):
        scanner_key = load_public_key(text)
        assert verify_ticket(scanner_key, secret) == claims
        assert key_id(scanner_key) == key_id(public)


def test_dev_key_loads() -> None:
    key = load_private_key(DEV_TICKET_SIGNING_KEY)
    assert len(key_id(key.public_key())) == 16


@pytest.mark.parametrize("bad", ["not a key", base64.b64encode(b"short").decode()])
def test_bad_key_settings_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"base64|32 bytes"):
        load_private_key(bad)
    with pytest.raises(ValueError, match=r"base64|32 bytes"):
        load_public_key(bad)


def test_pem_of_another_key_type_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = ec_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match="Ed25519"):
        load_private_key(pem)
    pub_pem = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(pub_pem)
