"""Organizations and their members: every SQL statement about them, and the process-level
cache event → organization.

An organization owns venues, and an event belongs to its venue's organization, forever (no
route moves either: the key ``events (venue_id, organization_id) → venues`` keeps them
together). Members have one role each (``OrganizationRole``); the platform admin acts as an
owner of every organization without being a member. An organization always keeps an owner:
role changes and removals lock the organization's row, so two owners demoting each other at
once cannot both succeed.

Services only ``flush()``; the caller owns the transaction.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import joinedload

from evently.accounts import get_user_by_email
from evently.audit import Actor
from evently.db.models import DEFAULT_ORGANIZATION_ID, Organization, OrganizationMember, User
from evently.enums import OrganizationRole, Role
from evently.errors import (
    AccountNotFound,
    AlreadyMember,
    LastOwner,
    MemberNotFound,
    OrganizationNotFound,
)

log = logging.getLogger("evently.organizations")

__all__ = [
    "DEFAULT_ORGANIZATION_ID",
    "DOOR_ROLES",
    "EVENT_ORGANIZATIONS",
    "Access",
    "DoorEvent",
    "EventOrganizations",
    "organization_of_event",
]


# ---- who may act in an organization ----------------------------------------------------------


@dataclass(frozen=True)
class Access:
    """The caller's standing in one organization: a member's role, or the platform admin
    (who acts as an owner without being a member)."""

    organization: Organization
    user: User
    role: OrganizationRole
    platform_admin: bool

    @property
    def actor(self) -> Actor:
        """How the audit log names the caller."""
        return Actor(f"{'admin' if self.platform_admin else 'user'}:{self.user.id}", self.user.id)

    def allows(self, *roles: OrganizationRole) -> bool:
        return self.role in roles


async def access(session: AsyncSession, organization_id: uuid.UUID, user: User) -> Access:
    """The caller's access, or 404 ``organization_not_found`` when the organization does not
    exist or the caller is not a member (outsiders cannot tell the two apart)."""
    row = (
        await session.execute(
            select(Organization, OrganizationMember.role)
            .outerjoin(
                OrganizationMember,
                (OrganizationMember.organization_id == Organization.id)
                & (OrganizationMember.user_id == user.id),
            )
            .where(Organization.id == organization_id)
        )
    ).first()
    if row is not None and user.role == Role.ADMIN:  # whatever their membership says
        return Access(row.Organization, user, OrganizationRole.OWNER, platform_admin=True)
    if row is not None and row.role is not None:
        return Access(row.Organization, user, OrganizationRole(row.role), platform_admin=False)
    raise OrganizationNotFound(f"No organization {organization_id}.")


#: the roles that admit tickets at an organization's door (issue 30): the platform ``door``
#: role alone admits nothing; a scanner must be one of these in the event's organization
DOOR_ROLES: tuple[OrganizationRole, ...] = (
    OrganizationRole.OWNER,
    OrganizationRole.MANAGER,
    OrganizationRole.DOOR,
)


@dataclass(frozen=True)
class DoorEvent:
    """An event the caller may admit tickets to."""

    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    starts_at: datetime


async def door_event(
    session: AsyncSession,
    event_id: uuid.UUID,
    user: User,
    *,
    organization_id: uuid.UUID | None = None,
) -> DoorEvent | None:
    """The event when the caller works its door: a ``DOOR_ROLES`` member of the event's
    organization, or the platform admin; None otherwise, as for an unknown event (and when
    ``organization_id`` is given and the event is not that organization's)."""
    row = (
        await session.execute(
            text(
                """
SELECT e.id, e.organization_id, e.name, e.starts_at
FROM events e
WHERE e.id = :event AND (CAST(:org AS uuid) IS NULL OR e.organization_id = CAST(:org AS uuid))
  AND (:admin OR EXISTS (
        SELECT 1 FROM organization_members m
        WHERE m.organization_id = e.organization_id AND m.user_id = :user
          AND m.role = ANY(CAST(:roles AS text[]))))
"""
            ),
            {
                "event": event_id,
                "org": organization_id,
                "admin": user.role == Role.ADMIN,
                "user": user.id,
                "roles": [str(r) for r in DOOR_ROLES],
            },
        )
    ).first()
    if row is None:
        return None
    return DoorEvent(row.id, row.organization_id, row.name, row.starts_at)


# ---- organizations ---------------------------------------------------------------------------


async def create_organization(
    session: AsyncSession, *, name: str, owner_email: str, created_by: uuid.UUID
) -> tuple[Organization, User]:
    """A new organization with its first owner, an existing account."""
    owner = await get_user_by_email(session, owner_email.strip())
    if owner is None:
        raise AccountNotFound(f"owner_email: there is no account {owner_email!r}.")
    org = Organization(name=name, created_by=created_by)
    session.add(org)
    await session.flush()
    session.add(
        OrganizationMember(
            organization_id=org.id,
            user_id=owner.id,
            role=OrganizationRole.OWNER,
            added_by=created_by,
        )
    )
    await session.flush()
    await session.refresh(org)
    return org, owner


async def get_organization(
    session: AsyncSession, organization_id: uuid.UUID
) -> Organization | None:
    return await session.get(Organization, organization_id)


async def rename_organization(session: AsyncSession, org: Organization, name: str) -> Organization:
    org.name = name
    await session.flush()
    await session.refresh(org)
    return org


async def list_organizations(
    session: AsyncSession, *, member_id: uuid.UUID | None, page: int, limit: int
) -> tuple[list[tuple[Organization, str | None]], int]:
    """Organizations by name (then id) with the member's role; ``member_id=None``: all of
    them (the platform admin), without a role."""
    if member_id is None:
        base = select(Organization, text("NULL AS role"))
        count = select(func.count()).select_from(Organization)
    else:
        base = select(Organization, OrganizationMember.role).join(
            OrganizationMember,
            (OrganizationMember.organization_id == Organization.id)
            & (OrganizationMember.user_id == member_id),
        )
        count = (
            select(func.count())
            .select_from(OrganizationMember)
            .where(OrganizationMember.user_id == member_id)
        )
    total = int(await session.scalar(count) or 0)
    rows = await session.execute(
        base.order_by(Organization.name, Organization.id).offset((page - 1) * limit).limit(limit)
    )
    return [(r[0], r[1]) for r in rows], total


# ---- members -------------------------------------------------------------------------------


async def list_members(
    session: AsyncSession, organization_id: uuid.UUID, *, page: int, limit: int
) -> tuple[list[OrganizationMember], int]:
    """Members by when they joined (then user id), with their accounts."""
    total = await session.scalar(
        select(func.count())
        .select_from(OrganizationMember)
        .where(OrganizationMember.organization_id == organization_id)
    )
    rows = await session.scalars(
        select(OrganizationMember)
        .options(joinedload(OrganizationMember.user))
        .where(OrganizationMember.organization_id == organization_id)
        .order_by(OrganizationMember.created_at, OrganizationMember.user_id)
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


async def _member(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> OrganizationMember:
    member = await session.scalar(
        select(OrganizationMember)
        .options(joinedload(OrganizationMember.user))
        .where(
            OrganizationMember.organization_id == organization_id,
            OrganizationMember.user_id == user_id,
        )
        .execution_options(populate_existing=True)
    )
    if member is None:
        raise MemberNotFound(f"{user_id} is not a member of this organization.")
    return member


async def add_member(
    session: AsyncSession,
    organization_id: uuid.UUID,
    *,
    email: str,
    role: OrganizationRole,
    added_by: uuid.UUID,
) -> OrganizationMember:
    user = await get_user_by_email(session, email.strip())
    if user is None:
        raise AccountNotFound(f"email: there is no account {email!r}; ask them to register.")
    try:
        async with session.begin_nested():
            session.add(
                OrganizationMember(
                    organization_id=organization_id, user_id=user.id, role=role, added_by=added_by
                )
            )
    except IntegrityError as exc:
        raise AlreadyMember(f"{user.email} is already a member of this organization.") from exc
    return await _member(session, organization_id, user.id)


async def _lock_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    await session.execute(
        text("SELECT 1 FROM organizations WHERE id = :id FOR UPDATE"), {"id": organization_id}
    )


async def _owners(session: AsyncSession, organization_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(OrganizationMember)
            .where(
                OrganizationMember.organization_id == organization_id,
                OrganizationMember.role == OrganizationRole.OWNER,
            )
        )
        or 0
    )


async def change_role(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID, role: OrganizationRole
) -> tuple[OrganizationMember, str]:
    """The member with the new role, and the old role. The last owner stays an owner."""
    await _lock_organization(session, organization_id)
    member = await _member(session, organization_id, user_id)
    old = member.role
    demoted = old == OrganizationRole.OWNER and role != OrganizationRole.OWNER
    if demoted and await _owners(session, organization_id) <= 1:
        raise LastOwner("This is the organization's last owner: make another owner first.")
    member.role = role
    await session.flush()
    return await _member(session, organization_id, user_id), old


async def remove_member(
    session: AsyncSession, organization_id: uuid.UUID, user_id: uuid.UUID
) -> OrganizationMember:
    await _lock_organization(session, organization_id)
    member = await _member(session, organization_id, user_id)
    if member.role == OrganizationRole.OWNER and await _owners(session, organization_id) <= 1:
        raise LastOwner("This is the organization's last owner: make another owner first.")
    await session.delete(member)
    await session.flush()
    return member


# ---- event → organization, per process -------------------------------------------------------


class EventOrganizations:
    """event id → organization id. An event never changes organization, so a known answer
    never goes stale: the reserve path asks here instead of reading Postgres per request (one
    read per event per process; concurrent first asks for one event share that read). Bounded:
    the least recently used events are forgotten beyond ``maxsize``."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self._known: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._loading: dict[uuid.UUID, asyncio.Future[uuid.UUID | None]] = {}
        self.reads = 0  # Postgres reads made (tests)

    def known(self, event_id: uuid.UUID) -> uuid.UUID | None:
        org = self._known.get(event_id)
        if org is not None:
            self._known.move_to_end(event_id)
        return org

    def remember(self, event_id: uuid.UUID, organization_id: uuid.UUID) -> None:
        self._known[event_id] = organization_id
        self._known.move_to_end(event_id)
        while len(self._known) > self.maxsize:
            self._known.popitem(last=False)

    async def get(self, engine: AsyncEngine, event_id: uuid.UUID) -> uuid.UUID | None:
        """The event's organization (None for an unknown event, which is not remembered)."""
        org = self.known(event_id)
        if org is not None:
            return org
        loop = asyncio.get_running_loop()
        pending = self._loading.get(event_id)
        if pending is not None and pending.get_loop() is loop:
            return await asyncio.shield(pending)
        future: asyncio.Future[uuid.UUID | None] = loop.create_future()
        self._loading[event_id] = future
        try:
            self.reads += 1
            async with engine.connect() as conn:
                org = await conn.scalar(
                    text("SELECT organization_id FROM events WHERE id = :id"), {"id": event_id}
                )
            found: uuid.UUID | None = org
            if found is not None:
                self.remember(event_id, found)
            future.set_result(found)
            return found
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            if self._loading.get(event_id) is future:
                del self._loading[event_id]


EVENT_ORGANIZATIONS = EventOrganizations()


async def organization_of_event(engine: AsyncEngine, event_id: uuid.UUID) -> uuid.UUID | None:
    """The event's organization, from this process's cache (a Postgres read the first time).
    Never fails: it labels workflows for support (their ``OrganizationId``), so with Postgres
    unreachable the answer is None and the reservation goes on without the label."""
    try:
        return await EVENT_ORGANIZATIONS.get(engine, event_id)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        log.warning("organization of event %s unknown for now: %r", event_id, exc)
        return None
