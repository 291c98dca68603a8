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


# the role sets of the routes, named once: the back office's pages (api/manage/) check the same
#: any member: the organization, its venues and events, its members
MEMBERS = (OWNER, MANAGER, FINANCE, DOOR)
#: venues and events: create, change, publish, cancel
EVENT_MANAGERS = (OWNER, MANAGER)
#: bookings, attendees, exports, analytics
SALES_READERS = (OWNER, MANAGER, FINANCE)
#: refunds
REFUNDERS = (OWNER, FINANCE)
#: an organizer's order (comp, box office; issue 29)
ORDER_TAKERS = (OWNER, MANAGER, FINANCE)
#: members, webhooks, the audit log, the organization's name
OWNERS = (OWNER,)

AnyMember = Annotated[Access, Depends(require_org_roles(*MEMBERS))]
EventManager = Annotated[Access, Depends(require_org_roles(*EVENT_MANAGERS))]
SalesReader = Annotated[Access, Depends(require_org_roles(*SALES_READERS))]
Refunder = Annotated[Access, Depends(require_org_roles(*REFUNDERS))]
OrderTaker = Annotated[Access, Depends(require_org_roles(*ORDER_TAKERS))]
Owner = Annotated[Access, Depends(require_org_roles(*OWNERS))]
