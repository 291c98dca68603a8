"""The audit log of organizer actions: who created, changed, published, cancelled, refunded,
added, removed what, and when. Each entry is written in the transaction of the change it
records (a rolled-back change leaves no entry); owners read them newest first.

Actions (``<what>.<verb>``): ``organization.created``, ``organization.renamed``,
``member.added``, ``member.role_changed``, ``member.removed``, ``venue.created``,
``event.created``, ``event.updated``, ``event.published``, ``event.completed``,
``event.cancelled``, ``booking.refunded``, ``webhook.created``, ``webhook.updated``,
``webhook.deleted``, ``webhook.disabled`` (by a receiver's 410: actor ``system:webhooks``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from evently.db.models import AuditEntry

SYSTEM_WEBHOOKS = "system:webhooks"


def jsonable(value: Any) -> Any:
    """Details as JSON: ids, times and decimals as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def record(
    db: AsyncSession | AsyncConnection,
    *,
    organization_id: uuid.UUID,
    actor: str,
    actor_user_id: uuid.UUID | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await db.execute(
        pg_insert(AuditEntry).values(
            id=uuid.uuid4(),
            organization_id=organization_id,
            actor=actor[:200],
            actor_user_id=actor_user_id,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            details=jsonable(details or {}),
            # entries of one transaction keep their order (now() is the transaction's start)
            created_at=func.clock_timestamp(),
        )
    )


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor_user_id: uuid.UUID | None = None
    target_id: str | None = None


async def list_entries(
    session: AsyncSession,
    organization_id: uuid.UUID,
    filters: AuditFilter,
    *,
    page: int,
    limit: int,
) -> tuple[list[AuditEntry], int]:
    """Newest first (``ix_audit_log_organization_created``)."""
    where = [AuditEntry.organization_id == organization_id]
    if filters.action:
        where.append(AuditEntry.action == filters.action)
    if filters.actor_user_id:
        where.append(AuditEntry.actor_user_id == filters.actor_user_id)
    if filters.target_id:
        where.append(AuditEntry.target_id == filters.target_id)
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    rows = await session.scalars(
        select(AuditEntry)
        .where(*where)
        .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
        .offset((page - 1) * limit)
        .limit(limit)
    )
    return list(rows), int(total or 0)


@dataclass(frozen=True)
class Actor:
    """Who acts: ``label`` as the log shows it (``user:<id>``, ``admin:<id>``), and the
    account."""

    label: str
    user_id: uuid.UUID | None

    @classmethod
    def admin(cls, user_id: uuid.UUID) -> Actor:
        return cls(f"admin:{user_id}", user_id)


async def record_by(
    db: AsyncSession | AsyncConnection,
    actor: Actor,
    *,
    organization_id: uuid.UUID,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    details: dict[str, Any] | None = None,
) -> None:
    await record(
        db,
        organization_id=organization_id,
        actor=actor.label,
        actor_user_id=actor.user_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=details,
    )
