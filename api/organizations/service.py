"""Members of an organization, the one copy: add, change a role, remove — each with its audit
entry in the same transaction. The JSON routes (api/organizations/endpoints.py) and the back
office's members page (api/manage/) both call these, behind the same owner-only role check."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from evently import audit, organizations
from evently.db.models import OrganizationMember
from evently.enums import OrganizationRole
from evently.organizations import Access


async def add_member(
    session: AsyncSession, access: Access, *, email: str, role: OrganizationRole
) -> OrganizationMember:
    member = await organizations.add_member(
        session, access.organization.id, email=email, role=role, added_by=access.user.id
    )
    await audit.record_by(
        session,
        access.actor,
        organization_id=access.organization.id,
        action="member.added",
        target_type="member",
        target_id=member.user_id,
        details={"email": member.user.email, "role": member.role},
    )
    return member


async def change_role(
    session: AsyncSession, access: Access, user_id: uuid.UUID, role: OrganizationRole
) -> OrganizationMember:
    member, old = await organizations.change_role(session, access.organization.id, user_id, role)
    if old != member.role:
        await audit.record_by(
            session,
            access.actor,
            organization_id=access.organization.id,
            action="member.role_changed",
            target_type="member",
            target_id=user_id,
            details={"email": member.user.email, "role": {"from": old, "to": member.role}},
        )
    return member


async def remove_member(session: AsyncSession, access: Access, user_id: uuid.UUID) -> None:
    member = await organizations.remove_member(session, access.organization.id, user_id)
    await audit.record_by(
        session,
        access.actor,
        organization_id=access.organization.id,
        action="member.removed",
        target_type="member",
        target_id=user_id,
        details={"email": member.user.email, "role": member.role},
    )
