"""The waiting room's signed queue tickets: their format is stable across releases (a buyer
holding one during a deploy keeps their place), and only an exact copy reads back."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from evently import waitingroom

SECRET = "s" * 40
EVENT = uuid.UUID("11111111-2222-3333-4444-555555555555")
USER = uuid.UUID("66666666-7777-8888-9999-000000000000")


def reference_signature(secret: str, purpose: str, payload: str) -> str:
    """The signature as issued since the waiting room shipped: HMAC-SHA256 under a key derived
    per purpose, first 18 bytes, unpadded URL-safe base64."""
    key = hmac.new(secret.encode(), f"evently-{purpose}".encode(), hashlib.sha256).digest()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def test_a_queue_ticket_is_signed_as_released_tickets_were_and_reads_back() -> None:
    ticket = waitingroom.queue_ticket(SECRET, EVENT, USER, 42)
    payload = f"{EVENT.hex}.{USER.hex}.42"
    assert ticket == f"42.{USER.hex}.{reference_signature(SECRET, 'queue-ticket', payload)}"
    assert waitingroom.read_queue_ticket(SECRET, EVENT, ticket) == waitingroom.QueueTicket(
        EVENT, USER, 42
    )
    # signed many times over (the keyed HMAC is reused): every signature still its own
    assert waitingroom.queue_ticket(SECRET, EVENT, USER, 43) != ticket.replace("42.", "43.", 1)
    assert waitingroom.queue_ticket(SECRET, EVENT, USER, 42) == ticket


def test_a_ticket_under_another_secret_or_event_or_altered_does_not_read() -> None:
    ticket = waitingroom.queue_ticket(SECRET, EVENT, USER, 7)
    assert waitingroom.read_queue_ticket("t" * 40, EVENT, ticket) is None
    assert waitingroom.read_queue_ticket(SECRET, uuid.uuid4(), ticket) is None
    assert waitingroom.read_queue_ticket(SECRET, EVENT, ticket.replace("7.", "6.", 1)) is None
    assert waitingroom.queue_ticket("t" * 40, EVENT, USER, 7) != ticket


def test_an_admission_token_reads_until_its_expiry_and_not_at_it() -> None:
    token = waitingroom.admission_token(SECRET, EVENT, USER, 5, 1_000)
    admitted = waitingroom.Admission(EVENT, USER, 5, 1_000)
    assert waitingroom.read_admission_token(SECRET, token, EVENT, now=999.9) == admitted
    assert waitingroom.read_admission_token(SECRET, token, EVENT, now=1_000) is None
    assert waitingroom.read_admission_token(SECRET, token, EVENT, now=5_000) is None
    # the expiry is signed: moving it forward breaks the signature
    extended = token.replace(".1000.", ".9999.")
    assert waitingroom.read_admission_token(SECRET, extended, EVENT, now=999) is None
    assert waitingroom.expiry(admitted_at_ms=1_000_500, admission_seconds=120) == 1_120
