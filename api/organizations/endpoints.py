"""Organizations, their members and their audit log.

The platform admin creates an organization with its first owner (an existing account); owners
add members (owner, manager, finance, door), change their roles and remove them; an
organization always keeps an owner. Every member sees the organization and its members; only
owners read the audit log. Anybody outside the organization gets 404."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.auth.deps import AdminUser, CurrentUser
from api.deps import SessionDep
from api.http.links import PageLinksDep
from api.organizations import service
from api.organizations.deps import AnyMember, Owner
from api.organizations.schemas import (
    AuditEntryOut,
    AuditPage,
    MemberCreate,
    MemberOut,
    MemberPage,
    MemberPatch,
    OrganizationCreate,
    OrganizationOut,
    OrganizationPage,
    OrganizationPatch,
)
from api.problems import problem_responses
from evently import audit, organizations
from evently.audit import Actor
from evently.enums import Role
from evently.errors import AccountNotFound, AlreadyMember, LastOwner, MemberNotFound
from evently.organizations import Access

router = APIRouter(prefix="/organizations", tags=["organizations"])
MAX_PAGE = 100_000
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Limit = Annotated[int, Query(ge=1, le=100)]


def _out(access: Access) -> OrganizationOut:
    return OrganizationOut.of(access.organization, None if access.platform_admin else access.role)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=OrganizationOut,
    responses=problem_responses(AccountNotFound),
    summary="Create an organization and its first owner (platform admin)",
)
async def create_organization(
    body: OrganizationCreate, session: SessionDep, admin: AdminUser
) -> OrganizationOut:
    org, owner = await organizations.create_organization(
        session, name=body.name, owner_email=body.owner_email, created_by=admin.id
    )
    actor = Actor.admin(admin.id)
    await audit.record_by(
        session,
        actor,
        organization_id=org.id,
        action="organization.created",
        target_type="organization",
        target_id=org.id,
        details={"name": org.name},
    )
    await audit.record_by(
        session,
        actor,
        organization_id=org.id,
        action="member.added",
        target_type="member",
        target_id=owner.id,
        details={"email": owner.email, "role": "owner"},
    )
    return OrganizationOut.of(org, None)


@router.get(
    "",
    response_model=OrganizationPage,
    summary="Your organizations (the platform admin: all of them)",
)
async def list_organizations(
    user: CurrentUser, session: SessionDep, links: PageLinksDep, page: Page = 1, limit: Limit = 20
) -> OrganizationPage:
    """By name. Each carries your role in it."""
    rows, total = await organizations.list_organizations(
        session,
        member_id=None if user.role == Role.ADMIN else user.id,
        page=page,
        limit=limit,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return OrganizationPage(
        items=[OrganizationOut.of(org, role) for org, role in rows],
        total=total,
        page=page,
        limit=limit,
    )


@router.get("/{org_id}", response_model=OrganizationOut, summary="An organization (members)")
async def get_organization(access: AnyMember) -> OrganizationOut:
    return _out(access)


@router.patch("/{org_id}", response_model=OrganizationOut, summary="Rename (owners)")
async def rename_organization(
    body: OrganizationPatch, access: Owner, session: SessionDep
) -> OrganizationOut:
    old = access.organization.name
    org = await organizations.rename_organization(session, access.organization, body.name)
    if old != org.name:
        await audit.record_by(
            session,
            access.actor,
            organization_id=org.id,
            action="organization.renamed",
            target_type="organization",
            target_id=org.id,
            details={"name": {"from": old, "to": org.name}},
        )
    return _out(access)


# ---- members -------------------------------------------------------------------------------


@router.get("/{org_id}/members", response_model=MemberPage, summary="Members (members)")
async def list_members(
    access: AnyMember, session: SessionDep, links: PageLinksDep, page: Page = 1, limit: Limit = 50
) -> MemberPage:
    """In the order they joined."""
    members, total = await organizations.list_members(
        session, access.organization.id, page=page, limit=limit
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return MemberPage(items=[MemberOut.of(m) for m in members], total=total, page=page, limit=limit)


@router.post(
    "/{org_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=MemberOut,
    responses=problem_responses(AccountNotFound, AlreadyMember),
    summary="Add a member (owners)",
)
async def add_member(body: MemberCreate, access: Owner, session: SessionDep) -> MemberOut:
    member = await service.add_member(session, access, email=body.email, role=body.role)
    return MemberOut.of(member)


@router.patch(
    "/{org_id}/members/{user_id}",
    response_model=MemberOut,
    responses=problem_responses(MemberNotFound, LastOwner),
    summary="Change a member's role (owners)",
)
async def change_member_role(
    user_id: uuid.UUID, body: MemberPatch, access: Owner, session: SessionDep
) -> MemberOut:
    return MemberOut.of(await service.change_role(session, access, user_id, body.role))


@router.delete(
    "/{org_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(MemberNotFound, LastOwner),
    summary="Remove a member (owners)",
)
async def remove_member(user_id: uuid.UUID, access: Owner, session: SessionDep) -> Response:
    await service.remove_member(session, access, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# ---- the audit log -------------------------------------------------------------------------


@router.get("/{org_id}/audit", response_model=AuditPage, summary="The audit log (owners)")
async def read_audit_log(
    access: Owner,
    session: SessionDep,
    links: PageLinksDep,
    action: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z_]+\.[a-z_]+$", description="e.g. event.cancelled"),
    ] = None,
    actor_user_id: uuid.UUID | None = None,
    target_id: Annotated[str | None, Query(max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
    page: Page = 1,
    limit: Limit = 50,
) -> AuditPage:
    """Who did what, when: newest first."""
    entries, total = await audit.list_entries(
        session,
        access.organization.id,
        audit.AuditFilter(action=action, actor_user_id=actor_user_id, target_id=target_id),
        page=page,
        limit=limit,
    )
    links.set(page, limit, total, max_page=MAX_PAGE)
    return AuditPage(
        items=[AuditEntryOut.of(e) for e in entries], total=total, page=page, limit=limit
    )
