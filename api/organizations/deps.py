"""Who may act in an organization: the caller's membership, loaded once per request, and the
roles a route needs. Non-members (and unknown organizations) get 404
``organization_not_found``; members without the role get 403 ``organization_role_required``.
The platform admin acts as an owner of every organization."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentUser
from api.deps import SessionDep
from api.problems import DEPENDENCY_ERRORS
from evently import organizations
from evently.enums import OrganizationRole
from evently.errors import OrganizationNotFound, OrganizationRoleRequired
from evently.organizations import Access

OWNER, MANAGER, FINANCE, DOOR = (
    OrganizationRole.OWNER,
    OrganizationRole.MANAGER,
    OrganizationRole.FINANCE,
    OrganizationRole.DOOR,
)


async def organization_access(org_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Access:
    return await organizations.access(session, org_id, user)


DEPENDENCY_ERRORS[organization_access] = (OrganizationNotFound,)

OrgAccess = Annotated[Access, Depends(organization_access)]


def require_org_roles(*roles: OrganizationRole) -> Callable[[Access], Awaitable[Access]]:
    async def _dep(access: OrgAccess) -> Access:
        if not access.allows(*roles):
            raise OrganizationRoleRequired(
                f"This needs the {' or '.join(roles)} role in this organization "
                f"(yours: {access.role})."
            )
        return access

    DEPENDENCY_ERRORS[_dep] = (OrganizationRoleRequired,)
    return _dep


#: any member: the organization, its venues and events, its members
AnyMember = Annotated[Access, Depends(require_org_roles(OWNER, MANAGER, FINANCE, DOOR))]
#: venues and events: create, change, publish, cancel
EventManager = Annotated[Access, Depends(require_org_roles(OWNER, MANAGER))]
#: bookings, attendees, exports, analytics
SalesReader = Annotated[Access, Depends(require_org_roles(OWNER, MANAGER, FINANCE))]
#: refunds
Refunder = Annotated[Access, Depends(require_org_roles(OWNER, FINANCE))]
# issue 29: an organizer's order (comp, box office)
OrderTaker = Annotated[Access, Depends(require_org_roles(OWNER, MANAGER, FINANCE))]
#: members, webhooks, the audit log, the organization's name
Owner = Annotated[Access, Depends(require_org_roles(OWNER))]
