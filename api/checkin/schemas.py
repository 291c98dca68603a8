from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.tickets.schemas import SeatFields


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: str = Field(
        min_length=1, max_length=512, description="the QR payload as scanned (`EVT1.…`)"
    )
    nonce: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{8,100}$",
        description="fresh per scan (a UUID); a retry of the SAME scan sends the same nonce "
        "and gets the same answer",
    )
    device_id: str = Field(
        pattern=r"^[A-Za-z0-9._:@ -]{1,100}$", description="the scanner, as the door names it"
    )
    scanned_at: AwareDatetime | None = Field(
        None,
        description="set by an offline device uploading its log: when it scanned. Its scans are "
        "admitted if the ticket is still unadmitted, else reported as conflicts",
    )
    event_id: uuid.UUID | None = Field(
        None, description="the event this door admits to: tickets of other events are refused"
    )


class TicketBrief(SeatFields):
    id: uuid.UUID
    event_id: uuid.UUID
    booking_id: uuid.UUID
    seat: int
    place: str | None = Field(
        None,
        description="where the door sends the guest (reserved seating), null for general admission",
        examples=["Section B, row 7, seat 12"],
    )
    holder_name: str = Field(description="the attendee named for this ticket, else the buyer")


class RedeemOut(BaseModel):
    result: Literal["admitted"]
    ticket: TicketBrief
    checked_in_at: datetime
    device_id: str = Field(description="the device that admitted it")
    offline: bool
    replay: bool = Field(description="this nonce was answered before: the same answer again")


class KeyOut(BaseModel):
    key_id: str = Field(description="first 16 hex digits of SHA-256 of the raw public key")
    algorithm: Literal["Ed25519"]
    public_key: str = Field(description="the 32 raw bytes, base64")
    pem: str = Field(description="SubjectPublicKeyInfo PEM")
    current: bool = Field(description="signs new tickets; the others still verify (rotation)")


class KeysOut(BaseModel):
    format: Literal["EVT1"]
    description: str
    keys: list[KeyOut]


class TicketCounts(BaseModel):
    issued: int
    valid: int
    revoked: int
    checked_in: int
    not_checked_in: int = Field(description="valid tickets nobody has scanned yet")


class ScanCounts(BaseModel):
    total: int
    admitted: int
    already_checked_in: int
    ticket_revoked: int
    wrong_event: int
    offline: int
    conflicts: int = Field(description="offline scans the server refused: check those doors")


class ScanOut(BaseModel):
    ticket_id: uuid.UUID
    seat: int
    booking_id: uuid.UUID
    device_id: str
    result: str
    offline: bool
    conflict: bool
    scanned_at: datetime
    received_at: datetime
    checked_in_at: datetime | None
    checked_in_device: str | None


class CheckinStatsOut(BaseModel):
    event_id: uuid.UUID
    tickets: TicketCounts
    scans: ScanCounts
    latest: list[ScanOut]
    latest_conflicts: list[ScanOut]


class AdmittedOut(BaseModel):
    ticket_id: uuid.UUID
    checked_in_at: datetime
    device_id: str | None = Field(description="the device that admitted it")


class DoorListOut(BaseModel):
    event_id: uuid.UUID
    as_of: datetime = Field(description="when this list was read")
    revoked: list[uuid.UUID] = Field(description="cancelled or refunded: refuse")
    checked_in: list[AdmittedOut] = Field(description="already admitted: refuse, saying where")
