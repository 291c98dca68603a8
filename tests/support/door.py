"""Door staff for check-in tests: since issue 30 a scanner admits only tickets of the
organizations it works the door of (a ``door``, ``owner`` or ``manager`` member)."""

from __future__ import annotations

import uuid

from evently.db.models import DEFAULT_ORGANIZATION_ID, OrganizationMember
from evently.infra.resources import Resources
from tests.factories import Account, make_account


async def door_member(
    res: Resources,
    organization_id: uuid.UUID | str = DEFAULT_ORGANIZATION_ID,
    *,
    role: str = "door",
    platform_role: str = "door",
    email: str | None = None,
) -> Account:
    """A fresh account that is a ``role`` member of the organization (the default one, where
    events made by ``tests.factories.make_event`` live)."""
    account = await make_account(res, role=platform_role, email=email)
    async with res.sessionmaker() as session, session.begin():
        session.add(
            OrganizationMember(
                organization_id=uuid.UUID(str(organization_id)), user_id=account.id, role=role
            )
        )
    return account
