"""Small factories that build fresh rows per test (unique emails and ids: no shared data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from evently.accounts import create_user
from evently.db.models import Event, User, Venue
from evently.infra.resources import Resources
from evently.security import create_access_token

PASSWORD = "correct-horse-battery"


@dataclass
class Account:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def id(self) -> uuid.UUID:
        return self.user.id


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


async def make_account(res: Resources, role: str = "buyer", email: str | None = None) -> Account:
    async with res.sessionmaker() as session, session.begin():
        user = await create_user(session, email or unique_email(role), PASSWORD, role=role)
    token, _ = create_access_token(res.settings, user.id, user.role)
    return Account(user, token)


async def make_venue(res: Resources, *, capacity: int = 1000, city: str = "Bergen") -> Venue:
    async with res.sessionmaker() as session, session.begin():
        venue = Venue(
            name=f"Hall {uuid.uuid4().hex[:6]}", address="Main st 1", city=city, capacity=capacity
        )
        session.add(venue)
    return venue


async def make_event(
    res: Resources,
    *,
    capacity: int = 100,
    status: str = "published",
    price: Decimal = Decimal("25.00"),
    currency: str = "EUR",
    venue: Venue | None = None,
    name: str | None = None,
    event_type: str = "concert",
    starts_in: timedelta = timedelta(days=30),
) -> Event:
    """An event straight in the database (admin API tests use the API instead)."""
    venue = venue or await make_venue(res, capacity=max(capacity, 1000))
    starts = datetime.now(UTC) + starts_in
    async with res.sessionmaker() as session, session.begin():
        event = Event(
            venue_id=venue.id,
            name=name or f"Event {uuid.uuid4().hex[:6]}",
            description="",
            event_type=event_type,
            starts_at=starts,
            ends_at=starts + timedelta(hours=3),
            capacity=capacity,
            available=capacity,
            held=0,
            sold=0,
            price=price,
            currency=currency,
            status=status,
            published_at=datetime.now(UTC) if status == "published" else None,
        )
        session.add(event)
    return event


_BULK_HASH: str | None = None


async def make_accounts(res: Resources, n: int, role: str = "buyer") -> list[Account]:
    """Many accounts at once: one INSERT and one password hash shared by all (hashing each
    would take ~0.1 s of CPU apiece)."""
    from evently.security import hash_password

    global _BULK_HASH
    if _BULK_HASH is None:
        _BULK_HASH = hash_password(PASSWORD)
    users = [
        User(id=uuid.uuid4(), email=unique_email(role), password_hash=_BULK_HASH, role=role)
        for _ in range(n)
    ]
    async with res.sessionmaker() as session, session.begin():
        session.add_all(users)
    return [Account(u, create_access_token(res.settings, u.id, u.role)[0]) for u in users]
