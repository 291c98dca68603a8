"""The door's rules around the one redeem statement (evently/tickets/checkin.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python

from api.checkin.schemas import RedeemOut, RedeemRequest, TicketBrief
from api.tickets.schemas import seat_fields
from evently.db.models import User
from evently.enums import CheckinResult, Role
from evently.errors import (
    AlreadyCheckedIn,
    EventlyError,
    InvalidScanTime,
    InvalidTicket,
    NonceReused,
    TicketNotFound,
    TicketRevoked,
    WrongEvent,
)
from evently.infra import metrics
from evently.infra.resources import Resources
from evently.organizations import DOOR_ROLES
from evently.tickets import checkin, signing, store

#: how far a device's clock may run ahead of ours
CLOCK_SKEW = timedelta(minutes=5)


async def redeem(res: Resources, user: User, body: RedeemRequest) -> RedeemOut:
    """Verify the secret, then the one redeem statement; a scanner who does not work the door
    of the ticket's organization gets the unknown ticket's 404 (the statement finds nothing)."""
    try:
        claims = store.signer(res.settings).verify(body.secret)
    except signing.InvalidTicket as exc:
        metrics.CHECKINS.labels(result="invalid").inc()
        raise InvalidTicket(f"Not a valid ticket: {exc}.") from exc
    if body.scanned_at is not None and body.scanned_at > datetime.now(UTC) + CLOCK_SKEW:
        raise InvalidScanTime("scanned_at: in the future (check the device's clock).")
    # its own autocommit connection: the answer's record commits even when the answer is a 409
    engine = res.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        scan = await checkin.redeem(
            conn,
            ticket_id=claims.ticket_id,
            nonce=body.nonce,
            device_id=body.device_id,
            user_id=user.id,
            scanned_at=body.scanned_at,
            event_id=body.event_id,
            admin=user.role == Role.ADMIN,
            door_roles=DOOR_ROLES,
        )
    if scan is None:
        raise TicketNotFound(
            "The signature is valid but no such ticket was issued here for your door."
        )
    if scan.replay and (scan.ticket_id != claims.ticket_id or scan.device_id != body.device_id):
        raise NonceReused()
    ticket = TicketBrief(
        id=scan.ticket_id,
        event_id=scan.event_id,
        booking_id=scan.booking_id,
        seat=scan.seat,
        label=store.seat_label(scan.seat, scan.place),
        holder_name=scan.holder_name,
        place=scan.place.spoken if scan.place else None,
        **seat_fields(scan.place),
    )
    if not scan.replay:
        metrics.CHECKINS.labels(result="conflict" if scan.conflict else scan.result).inc()
    if scan.result == CheckinResult.ADMITTED:
        assert scan.checked_in_at is not None
        assert scan.checked_in_device is not None
        return RedeemOut(
            result="admitted",
            ticket=ticket,
            checked_in_at=scan.checked_in_at,
            device_id=scan.checked_in_device,
            offline=body.scanned_at is not None,
            replay=scan.replay,
        )
    extra: dict[str, Any] = {
        "ticket": ticket.model_dump(mode="json"),
        "replay": scan.replay,
        "conflict": scan.conflict,
    }
    error: EventlyError
    if scan.result == CheckinResult.ALREADY_CHECKED_IN:
        at = to_jsonable_python(scan.checked_in_at)  # as the 200 answer writes it
        error = AlreadyCheckedIn(
            f"Already admitted at {at} by device {scan.checked_in_device!r}."
            + (" This offline scan conflicts with it." if scan.conflict else ""),
            checked_in_at=at,
            device_id=scan.checked_in_device,
            **extra,
        )
    elif scan.result == CheckinResult.TICKET_REVOKED:
        error = TicketRevoked(**extra)
    else:
        error = WrongEvent(**extra)
    raise error
